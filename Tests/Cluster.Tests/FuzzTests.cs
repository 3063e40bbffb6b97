using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Property: whatever is wrong with a request to a write endpoint (wrong types, nulls in arrays, unknown fields,
/// duplicate keys, huge numbers, wrong content types, bad path values, broken JSON), the answer is a 4xx problem+json
/// with a code, never a 5xx, and the metadata log does not move. Every generated request carries at least one defect
/// on top of a body that would otherwise be accepted, so a defect that slips through shows up as a state change.
/// </summary>
public sealed class FuzzTests(StrictInputFixture fixture, ITestOutputHelper output) : IClassFixture<StrictInputFixture>
{
    private const int Requests = 3000;

    [Fact]
    public async Task Thousands_of_malformed_requests_to_every_write_endpoint_get_4xx_problems_and_change_nothing()
    {
        var setup = fixture.Setup;
        var http = setup.Cluster.Silos[0].Http;
        var head = await LogHead.ReadAsync(http);
        var topicsBefore = (await setup.Client.ListTopicsAsync()).Topics.Select(t => t.Name).ToList();

        var statuses = new Dictionary<int, int>();
        var failures = new List<string>();
        var property = Prop.ForAll(BadRequests.Cases.ToArbitrary(), (BadRequest request) =>
        {
            var (status, verdict) = SendAsync(http, request).GetAwaiter().GetResult();
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            if (verdict is not null)
            {
                failures.Add($"{request}: {verdict}");
            }

            return verdict is null;
        });
        var error = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(Requests).WithQuietOnSuccess(true), property));

        output.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));
        Assert.True(error is null, $"{failures.FirstOrDefault()}\n{error?.Message}");
        Assert.True(statuses.Values.Sum() >= Requests, $"only {statuses.Values.Sum()} requests were sent");

        await LogHead.AssertUnmovedAsync(http, head);
        Assert.Equal(topicsBefore, (await setup.Client.ListTopicsAsync()).Topics.Select(t => t.Name).ToList());
    }

    /// <summary>The status, and why the answer is wrong (null when it is a proper refusal).</summary>
    private static async Task<(int Status, string? Verdict)> SendAsync(HttpClient http, BadRequest request)
    {
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Path);
        if (request.Body is not null)
        {
            message.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(request.Body));
            if (request.ContentType is not null)
            {
                message.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(request.ContentType);
            }
        }

        using var response = await http.SendAsync(message);
        var status = (int)response.StatusCode;
        var body = await response.Content.ReadAsStringAsync();
        if (status is < 400 or >= 500)
        {
            return (status, $"HTTP {status}: {body}");
        }

        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return (status, $"HTTP {status} without problem+json: {body}");
        }

        try
        {
            var code = JsonDocument.Parse(body).RootElement.GetProperty("code").GetString();
            return string.IsNullOrEmpty(code) ? (status, $"HTTP {status} without a code: {body}") : (status, null);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException)
        {
            return (status, $"HTTP {status} with an unreadable problem: {body}");
        }
    }
}
