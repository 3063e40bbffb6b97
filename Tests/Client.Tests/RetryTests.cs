using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>Which failures are retried, on which silo, and which are not.</summary>
public sealed class RetryTests
{
    private static readonly ClusterInfo Cluster = new("meta-test", 1, DateTimeOffset.UnixEpoch, null, []);

    [Fact]
    public async Task A_service_unavailable_answer_is_retried_until_the_silo_answers()
    {
        var calls = 0;
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", () =>
            Interlocked.Increment(ref calls) == 1 ? ErrorTests.Problem(503, ErrorCodes.Unavailable, true) : Results.Ok(Cluster)));
        using var client = Samples.Client(silo.Url);

        var cluster = await client.GetClusterAsync();

        Assert.Equal("meta-test", cluster.ClusterId);
        Assert.Equal(2, silo.Hits);
    }

    [Fact]
    public async Task A_write_refused_with_a_retryable_problem_is_resent()
    {
        var calls = 0;
        await using var silo = await FakeSilo.StartAsync(app => app.MapPost("/v1/elections", () =>
            Interlocked.Increment(ref calls) == 1
                ? ErrorTests.Problem(409, ErrorCodes.NotController, true)
                : Results.Ok(new ElectionResponse([], 3))));
        using var client = Samples.Client(silo.Url);

        var response = await client.ElectLeadersAsync(new ElectionRequest("preferred"));

        Assert.Equal(3, response.MetadataOffset);
        Assert.Equal(2, silo.Hits);
    }

    [Fact]
    public async Task A_silo_refusing_connections_is_skipped_for_the_next_one()
    {
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", () => Results.Ok(Cluster)));
        using var client = Samples.Client(FakeSilo.RefusingUrl(), silo.Url);

        await client.GetClusterAsync();
        await client.GetClusterAsync();

        Assert.Equal(2, silo.Hits); // The second call went straight to the silo that answered.
    }

    [Fact]
    public async Task A_write_is_resent_to_the_next_silo_when_the_first_refuses_the_connection()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
            app.MapPost("/v1/brokers/{id:int}/registration", (int id) => Results.Ok(new BrokerRegistrationResponse(id, 5, 5))));
        using var client = Samples.Client(FakeSilo.RefusingUrl(), silo.Url);

        var response = await client.RegisterBrokerAsync(3, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "b3", 9092)]));

        Assert.Equal(5, response.BrokerEpoch);
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_write_moves_on_to_the_next_silo_when_the_first_does_not_accept_the_connection()
    {
        // A listener that never accepts, its backlog filled: further connection attempts hang until the connect timeout.
        using var stuck = new TcpListener(IPAddress.Loopback, 0);
        stuck.Start(backlog: 1);
        var stuckUrl = new Uri($"http://127.0.0.1:{((IPEndPoint)stuck.LocalEndpoint).Port}/");
        var fillers = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var filler = new TcpClient();
                fillers.Add(filler);
                _ = filler.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)stuck.LocalEndpoint).Port);
            }

            await using var silo = await FakeSilo.StartAsync(app =>
                app.MapPost("/v1/elections", () => Results.Ok(new ElectionResponse([], 8))));
            using var client = Samples.Client(o => o.RequestTimeout = TimeSpan.FromSeconds(2), stuckUrl, silo.Url);

            var response = await client.ElectLeadersAsync(new ElectionRequest("preferred"));

            Assert.Equal(8, response.MetadataOffset);
            Assert.Equal(1, silo.Hits);
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task No_silo_reachable_surfaces_service_unavailable_after_every_attempt()
    {
        using var client = Samples.Client(o => o.MaxAttempts = 2, FakeSilo.RefusingUrl());

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.GetClusterAsync());

        Assert.Equal(ErrorCodes.Unavailable, error.Code);
        Assert.Null(error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public async Task A_post_that_times_out_after_sending_is_not_resent_and_surfaces_request_timed_out()
    {
        var never = new TaskCompletionSource();
        await using var silo = await FakeSilo.StartAsync(app => app.MapPost("/v1/topics", async (HttpContext context) =>
        {
            await never.Task.WaitAsync(context.RequestAborted);
            return Results.Ok();
        }));
        using var client = Samples.Client(o => o.RequestTimeout = TimeSpan.FromSeconds(1), silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.CreateTopicAsync(new CreateTopicRequest("orders")));

        Assert.Equal(ErrorCodes.Timeout, error.Code);
        Assert.True(error.IsRetryable);
        Assert.True(error.OutcomeUnknown);
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_gateway_timeout_on_a_post_is_not_resent()
    {
        await using var silo = await FakeSilo.StartAsync(app => app.MapPost("/v1/topics", () => Results.StatusCode(504)));
        using var client = Samples.Client(silo.Url);

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.CreateTopicAsync(new CreateTopicRequest("orders")));

        Assert.Equal((ErrorCodes.Timeout, 504, true, true), (error.Code, error.StatusCode, error.IsRetryable, error.OutcomeUnknown));
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_read_that_times_out_is_resent()
    {
        var calls = 0;
        var never = new TaskCompletionSource();
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", async (HttpContext context) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                await never.Task.WaitAsync(context.RequestAborted);
            }

            return Results.Ok(Cluster);
        }));
        using var client = Samples.Client(o => o.RequestTimeout = TimeSpan.FromSeconds(1), silo.Url);

        var cluster = await client.GetClusterAsync();

        Assert.Equal("meta-test", cluster.ClusterId);
        Assert.Equal(2, silo.Hits);
    }

    [Fact]
    public async Task A_read_waiting_for_an_offset_is_retried_when_the_silo_has_not_reached_it()
    {
        var calls = 0;
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/topics", () =>
            Interlocked.Increment(ref calls) < 3
                ? ErrorTests.Problem(504, ErrorCodes.OffsetNotAvailable, true)
                : Results.Ok(new TopicsResponse([], 10))));
        using var client = Samples.Client(silo.Url);

        var topics = await client.ListTopicsAsync(minOffset: 10);

        Assert.Equal(10, topics.MetadataOffset);
        Assert.Equal(3, silo.Hits);
    }

    [Fact(Timeout = 60_000)]
    public async Task Cancelling_a_call_stops_it_without_waiting_for_the_request_timeout()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource();
        await using var silo = await FakeSilo.StartAsync(app => app.MapGet("/v1/cluster", async (HttpContext context) =>
        {
            received.TrySetResult();
            await never.Task.WaitAsync(context.RequestAborted);
            return Results.Ok(Cluster);
        }));
        using var client = Samples.Client(o => o.RequestTimeout = TimeSpan.FromMinutes(10), silo.Url);
        using var cancellation = new CancellationTokenSource();

        var call = client.GetClusterAsync(cancellation.Token);
        await received.Task;
        await cancellation.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(cancellation.Token, error.CancellationToken);
        Assert.Equal(1, silo.Hits);
    }

    [Fact]
    public async Task A_call_on_a_disposed_client_throws_object_disposed()
    {
        var client = Samples.Client(FakeSilo.RefusingUrl());
        client.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetClusterAsync());
    }
}
