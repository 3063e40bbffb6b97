using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>Error answers become <see cref="MetaApiException"/>s that say what went wrong and whether to retry.</summary>
public sealed class ErrorTests
{
    internal static IResult Problem(int status, string code, bool retryable, string detail = "details") =>
        Results.Problem(detail: detail, statusCode: status, title: code,
            extensions: new Dictionary<string, object?> { ["code"] = code, ["retryable"] = retryable });

    [Fact]
    public async Task A_problem_answer_maps_to_an_exception_with_its_code_status_detail_and_silo()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapPost("/v1/topics", () => Problem(409, ErrorCodes.TopicAlreadyExists, false, "Topic 'orders' exists.")));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.CreateTopicAsync(new CreateTopicRequest("orders")));

        Assert.Equal(ErrorCodes.TopicAlreadyExists, error.Code);
        Assert.Equal(409, error.StatusCode);
        Assert.Equal("Topic 'orders' exists.", error.Detail);
        Assert.False(error.IsRetryable);
        Assert.False(error.OutcomeUnknown);
        Assert.Equal(silo.Url, error.SiloUrl);
        Assert.Contains("TOPIC_ALREADY_EXISTS", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_non_retryable_conflict_is_not_retried()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapPost("/v1/brokers/{id:int}/heartbeat", () => Problem(409, ErrorCodes.StaleBrokerEpoch, false)));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.SendBrokerHeartbeatAsync(1, new BrokerHeartbeatRequest(41, 0)));

        Assert.Equal(ErrorCodes.StaleBrokerEpoch, error.Code);
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_not_found_read_is_not_retried()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapGet("/v1/topics/{name}", () => Problem(404, ErrorCodes.UnknownTopicOrPartition, false)));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.DescribeTopicAsync("missing"));

        Assert.Equal((ErrorCodes.UnknownTopicOrPartition, 404, 1), (error.Code, error.StatusCode, silo.Hits));
    }

    [Fact]
    public async Task A_plain_text_error_page_still_produces_a_clear_exception()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapGet("/v1/cluster", () => Results.Text("proxy exploded", "text/plain", statusCode: 500)));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.GetClusterAsync());

        Assert.Equal("UNKNOWN_SERVER_ERROR", error.Code);
        Assert.Equal(500, error.StatusCode);
        Assert.False(error.IsRetryable);
        Assert.Contains("proxy exploded", error.Detail, StringComparison.Ordinal);
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_success_answer_that_is_not_json_is_reported_as_an_unknown_server_error()
    {
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", () => Results.Text("<html>", "text/html")));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.GetClusterAsync());

        Assert.Equal(("UNKNOWN_SERVER_ERROR", 200), (error.Code, error.StatusCode));
    }

    [Fact]
    public async Task A_bare_service_unavailable_is_named_and_retryable_after_the_last_attempt()
    {
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", () => Results.StatusCode(503)));
        using var client = Samples.Client(o => o.MaxAttempts = 3, silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.GetClusterAsync());

        Assert.Equal((ErrorCodes.Unavailable, 503, true), (error.Code, error.StatusCode, error.IsRetryable));
        Assert.Equal(3, silo.Hits);
    }
}
