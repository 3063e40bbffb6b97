using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Bad input gets a 4xx with a clear code and changes nothing.</summary>
public sealed class BadInputTests
{
    [Fact]
    public async Task Invalid_topic_requests_are_refused_with_clear_codes_and_change_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("bad-input");
        var before = await setup.Client.GetMetadataAsync();

        var cases = new (CreateTopicRequest Request, string Code, string Mentions)[]
        {
            (new("bad name!", 1, 1), ErrorCodes.InvalidTopic, "characters"),
            (new("..", 1, 1), ErrorCodes.InvalidTopic, "not allowed"),
            (new(new string('x', 250), 1, 1), ErrorCodes.InvalidTopic, "249"),
            (new("zero", 0, 1), ErrorCodes.InvalidPartitions, "1 to"),
            (new("negative", -3, 1), ErrorCodes.InvalidPartitions, "1 to"),
            (new("too-many-replicas", 3, 4), ErrorCodes.InvalidReplicationFactor, "3 available brokers"),
            (new("zero-replicas", 3, 0), ErrorCodes.InvalidReplicationFactor, "not possible"),
            (new("unknown-config", 1, 1, new Dictionary<string, string> { ["retention.forever"] = "yes" }), ErrorCodes.InvalidConfig, "retention.forever"),
            (new("bad-value", 1, 1, new Dictionary<string, string> { ["retention.ms"] = "soon" }), ErrorCodes.InvalidConfig, "whole number"),
            (new("min-isr", 1, 2, new Dictionary<string, string> { ["min.insync.replicas"] = "3" }), ErrorCodes.InvalidConfig, "exceeds the replication factor"),
            (new("unknown-broker", Assignment: [[1, 2], [2, 42]]), ErrorCodes.InvalidReplicaAssignment, "broker 42"),
            (new("duplicate-broker", Assignment: [[1, 1]]), ErrorCodes.InvalidReplicaAssignment, "twice"),
            (new("ragged", Assignment: [[1, 2], [3]]), ErrorCodes.InvalidReplicaAssignment, "same replication factor"),
        };
        foreach (var (request, code, mentions) in cases)
        {
            var error = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.CreateTopicAsync(request));
            Assert.True(error.Code == code, $"{request.Name}: expected {code}, got {error.Code} ({error.Detail})");
            Assert.Equal(400, error.StatusCode);
            Assert.Contains(mentions, error.Detail, StringComparison.Ordinal);
        }

        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("exists", 1, 1));
        var duplicate = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.CreateTopicAsync(new CreateTopicRequest("exists", 1, 1)));
        Assert.Equal((ErrorCodes.TopicAlreadyExists, 409), (duplicate.Code, duplicate.StatusCode));

        var unknown = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.DescribeTopicAsync("never-created"));
        Assert.Equal((ErrorCodes.UnknownTopicOrPartition, 404), (unknown.Code, unknown.StatusCode));
        var badConfig = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.AlterTopicConfigsAsync("exists",
            new AlterConfigsRequest(new Dictionary<string, string?> { ["cleanup.policy"] = "shred" })));
        Assert.Equal(ErrorCodes.InvalidConfig, badConfig.Code);
        var fewer = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.AddPartitionsAsync("exists", new AddPartitionsRequest(1)));
        Assert.Equal(ErrorCodes.InvalidPartitions, fewer.Code);

        // Only the one valid topic was created; nothing else changed. Read at the creation's offset: the SDK sends a
        // topic's writes to the silo owning its grain, and reads to its bootstrap silo, whose image may lag a moment.
        var after = await setup.Client.GetMetadataAsync(minOffset: created.MetadataOffset);
        Assert.Equal(["exists"], after.Topics.Select(t => t.Name));
        Assert.Equal(before.Brokers, after.Brokers, (a, b) => a.BrokerId == b.BrokerId && a.BrokerEpoch == b.BrokerEpoch && a.State == b.State);
        Assert.Equal("1", after.Topics.Single().Partitions.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Oversized_and_malformed_requests_get_problem_json_and_change_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("oversized", settings: MetaSetup.SteadyBrokerSessions);
        var http = setup.Cluster.Silos[0].Http;
        var head = await LogHead.ReadAsync(http);

        var huge = new CreateTopicRequest("huge", Assignment: [.. Enumerable.Range(0, 200_000).Select(_ => (IReadOnlyList<int>)[1, 2, 3])]);
        // With a Content-Length and "Expect: 100-continue" the silo refuses the body before it is sent (otherwise the
        // refusal races the upload and the client may see a broken pipe instead of the answer).
        var hugeBody = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(huge, JsonSerializerOptions.Web));
        hugeBody.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var oversized = new HttpRequestMessage(HttpMethod.Post, "/v1/topics") { Content = hugeBody };
        oversized.Headers.ExpectContinue = true;
        using var patient = new HttpClient(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromSeconds(30) }) { BaseAddress = http.BaseAddress };
        var tooLarge = await patient.SendAsync(oversized);
        await AssertProblemAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge, ErrorCodes.RequestTooLarge);

        var malformed = await http.PostAsync("/v1/topics", new StringContent("{\"name\": ", System.Text.Encoding.UTF8, "application/json"));
        await AssertProblemAsync(malformed, HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest);

        var badElection = await http.PostAsJsonAsync("/v1/elections", new ElectionRequest("sideways"));
        await AssertProblemAsync(badElection, HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest);

        var staleHeartbeat = await http.PostAsJsonAsync("/v1/brokers/1/heartbeat", new BrokerHeartbeatRequest(BrokerEpoch: 999, CurrentMetadataOffset: 0));
        await AssertProblemAsync(staleHeartbeat, HttpStatusCode.Conflict, ErrorCodes.StaleBrokerEpoch);

        var unregistered = await http.PostAsJsonAsync("/v1/brokers/77/heartbeat", new BrokerHeartbeatRequest(1, 0));
        await AssertProblemAsync(unregistered, HttpStatusCode.NotFound, ErrorCodes.BrokerIdNotRegistered);

        var duplicate = await http.PostAsJsonAsync("/v1/brokers/1/registration",
            new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "imposter", 9092)]));
        await AssertProblemAsync(duplicate, HttpStatusCode.Conflict, ErrorCodes.DuplicateBrokerRegistration);

        await LogHead.AssertUnmovedAsync(http, head);
        Assert.Empty((await setup.Client.GetMetadataAsync(minOffset: head)).Topics);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
    }
}
