using System.Net;
using System.Text;
using System.Text.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Strict input, one row per way a request can be wrong: every answer is a 4xx problem+json whose detail names what
/// was wrong, and nothing is written.
/// </summary>
public sealed class StrictInputTests(StrictInputFixture fixture) : IClassFixture<StrictInputFixture>
{
    private static readonly string Incarnation = Guid.NewGuid().ToString();

    /// <summary>(method, path, content type or null for none, body or null, status, code, text the detail must contain).</summary>
    public static TheoryData<string, string, string?, string?, int, string, string> Rows => new()
    {
        // Nulls inside arrays used to reach the grains and crash with 500.
        { "POST", "/v1/topics", Json, """{"name":"n1","assignment":[null]}""", 400, ErrorCodes.InvalidRequest, "$.assignment[0]" },
        { "POST", "/v1/topics", Json, """{"name":"n2","assignment":[[1,null]]}""", 400, ErrorCodes.InvalidRequest, "$.assignment[0][1]" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[null]}""", 400, ErrorCodes.InvalidRequest, "$.listeners[0]" },
        { "POST", "/v1/elections", Json, """{"type":"preferred","partitions":[null]}""", 400, ErrorCodes.InvalidRequest, "$.partitions[0]" },
        { "POST", "/v1/elections", Json, """{"type":"preferred","partitions":[{"topic":null,"partitions":[0]}]}""", 400, ErrorCodes.InvalidRequest, "$.partitions[0].topic" },
        { "POST", "/v1/elections", Json, """{"type":"preferred","partitions":[{"topic":"exists","partitions":null}]}""", 400, ErrorCodes.InvalidRequest, "$.partitions[0].partitions" },
        { "POST", "/v1/topics/exists/partitions", Json, """{"totalCount":2,"assignment":[null]}""", 400, ErrorCodes.InvalidRequest, "$.assignment[0]" },
        { "POST", "/v1/topics/exists/partitions/0/isr", Json, """{"leaderId":1,"brokerEpoch":1,"leaderEpoch":0,"partitionEpoch":0,"newIsr":[1,null]}""", 400, ErrorCodes.InvalidRequest, "$.newIsr[1]" },
        { "PATCH", "/v1/topics/exists/configs", Json, """{"configs":null}""", 400, ErrorCodes.InvalidRequest, "$.configs" },
        { "POST", "/v1/elections", Json, """{"type":null}""", 400, ErrorCodes.InvalidRequest, "$.type" },
        { "POST", "/v1/topics", Json, """{"partitions":1}""", 400, ErrorCodes.InvalidRequest, "$.name" },

        // Unknown fields, duplicate keys and type errors name the field (and the type expected).
        { "POST", "/v1/topics", Json, """{"name":"typo","partitonz":3}""", 400, ErrorCodes.InvalidRequest, "$.partitonz" },
        { "POST", "/v1/topics", Json, """{"name":"dup","name":"dup2"}""", 400, ErrorCodes.InvalidRequest, "$.name" },
        { "POST", "/v1/topics", Json, """{"name":"cfgdup","configs":{"retention.ms":"1","retention.ms":"2"}}""", 400, ErrorCodes.InvalidRequest, "retention.ms" },
        { "POST", "/v1/topics", Json, """{"name":"typed","partitions":"three"}""", 400, ErrorCodes.InvalidRequest, "$.partitions" },
        { "POST", "/v1/topics", Json, """{"name":"typed","partitions":"three"}""", 400, ErrorCodes.InvalidRequest, "whole number" },
        { "POST", "/v1/topics", Json, """{"name":"huge","partitions":1e400}""", 400, ErrorCodes.InvalidRequest, "$.partitions" },
        { "POST", "/v1/topics", Json, """{"name":"rf","replicationFactor":70000}""", 400, ErrorCodes.InvalidRequest, "$.replicationFactor" },
        { "POST", "/v1/brokers/7/heartbeat", Json, """{"brokerEpoch":"x","currentMetadataOffset":0}""", 400, ErrorCodes.InvalidRequest, "$.brokerEpoch" },
        { "POST", "/v1/brokers/7/registration", Json, """{"incarnationId":"not-a-uuid","listeners":[]}""", 400, ErrorCodes.InvalidRequest, "$.incarnationId" },
        { "POST", "/v1/topics", Json, """{"name":"cfgobj","configs":{"retention.ms":{"v":1}}}""", 400, ErrorCodes.InvalidRequest, "quote" },
        { "POST", "/v1/topics", Json, """[]""", 400, ErrorCodes.InvalidRequest, "object" },
        { "POST", "/v1/topics", Json, "", 400, ErrorCodes.InvalidRequest, "body" },

        // Content types: say what to send.
        { "POST", "/v1/topics", "text/plain", """{"name":"plain"}""", 415, ErrorCodes.UnsupportedMediaType, "application/json" },
        { "POST", "/v1/topics", null, """{"name":"none"}""", 415, ErrorCodes.UnsupportedMediaType, "application/json" },
        { "POST", "/v1/brokers/7/heartbeat", "application/xml", "<x/>", 415, ErrorCodes.UnsupportedMediaType, "application/json" },

        // Path and query values: 400 naming the parameter, not "no endpoint".
        { "POST", "/v1/brokers/abc/heartbeat", Json, """{"brokerEpoch":1,"currentMetadataOffset":0}""", 400, ErrorCodes.InvalidRequest, "path parameter 'id'" },
        { "POST", "/v1/brokers/99999999999/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[]}""", 400, ErrorCodes.InvalidRequest, "path parameter 'id'" },
        { "POST", "/v1/brokers/-4/heartbeat", Json, """{"brokerEpoch":1,"currentMetadataOffset":0}""", 400, ErrorCodes.InvalidRequest, "path parameter 'id'" },
        { "POST", "/v1/topics/exists/partitions/x/isr", Json, """{"leaderId":1,"brokerEpoch":1,"leaderEpoch":0,"partitionEpoch":0,"newIsr":[1]}""", 400, ErrorCodes.InvalidRequest, "path parameter 'partition'" },
        { "POST", "/v1/topics/exists/partitions/-1/isr", Json, """{"leaderId":1,"brokerEpoch":1,"leaderEpoch":0,"partitionEpoch":0,"newIsr":[1]}""", 400, ErrorCodes.InvalidRequest, "path parameter 'partition'" },
        { "GET", "/v1/metadata?minOffset=abc", null, null, 400, ErrorCodes.InvalidRequest, "query parameter 'minOffset'" },
        { "GET", "/v1/metadata?minOffset=-1", null, null, 400, ErrorCodes.InvalidRequest, "minOffset" },

        // Offsets beyond the log head fail at once instead of waiting.
        { "GET", "/v1/metadata?minOffset=9000000000", null, null, 400, ErrorCodes.OffsetOutOfRange, "head" },
        { "GET", "/v1/topics?minOffset=9000000000", null, null, 400, ErrorCodes.OffsetOutOfRange, "head" },
        { "GET", "/v1/metadata/delta", null, null, 400, ErrorCodes.InvalidRequest, "'sinceOffset' is required" },
        { "GET", "/v1/metadata/delta?sinceOffset=abc", null, null, 400, ErrorCodes.InvalidRequest, "query parameter 'sinceOffset'" },
        { "GET", "/v1/metadata/delta?sinceOffset=-1", null, null, 400, ErrorCodes.InvalidRequest, "sinceOffset" },
        { "GET", "/v1/metadata/delta?sinceOffset=9000000000", null, null, 400, ErrorCodes.OffsetOutOfRange, "sinceOffset 9000000000 is beyond the metadata log head" },
        { "GET", "/v1/metadata/delta?sinceOffset=0&minOffset=9000000000", null, null, 400, ErrorCodes.OffsetOutOfRange, "minOffset" },
        { "GET", "/v1/metadata/delta?sinceOffset=0&includeFenced=maybe", null, null, 400, ErrorCodes.InvalidRequest, "query parameter 'includeFenced'" },
        { "POST", "/v1/brokers/1/heartbeat", Json, """{"brokerEpoch":1,"currentMetadataOffset":-5}""", 400, ErrorCodes.InvalidRequest, "currentMetadataOffset" },
        { "POST", "/v1/brokers/1/heartbeat", Json, """{"brokerEpoch":1,"currentMetadataOffset":9000000000}""", 400, ErrorCodes.OffsetOutOfRange, "currentMetadataOffset" },

        // Listeners and rack: every problem in one answer, each naming its field.
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"PLAINTEXT","host":"","port":0,"securityProtocol":"TLS"},{"name":"PLAINTEXT","host":"b7","port":70000}]}""", 400, ErrorCodes.InvalidRequest, "listeners[0].host" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"PLAINTEXT","host":"","port":0,"securityProtocol":"TLS"},{"name":"PLAINTEXT","host":"b7","port":70000}]}""", 400, ErrorCodes.InvalidRequest, "listeners[0].securityProtocol" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"PLAINTEXT","host":"","port":0,"securityProtocol":"TLS"},{"name":"PLAINTEXT","host":"b7","port":70000}]}""", 400, ErrorCodes.InvalidRequest, "listeners[1].port" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"PLAINTEXT","host":"","port":0,"securityProtocol":"TLS"},{"name":"PLAINTEXT","host":"b7","port":70000}]}""", 400, ErrorCodes.InvalidRequest, "listeners[1].name" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"IN SIDE","host":"b 7","port":9092}]}""", 400, ErrorCodes.InvalidRequest, "listeners[0].name" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[]}""", 400, ErrorCodes.InvalidRequest, "$.listeners" },
        { "POST", "/v1/brokers/7/registration", Json, $$"""{"incarnationId":"{{Incarnation}}","listeners":[{"name":"PLAINTEXT","host":"b7","port":9092}],"rack":"rack with spaces"}""", 400, ErrorCodes.InvalidRequest, "$.rack" },

        // Topic names as Kafka refuses them.
        { "POST", "/v1/topics", Json, """{"name":"a_b","partitions":1,"replicationFactor":1}""", 400, ErrorCodes.InvalidTopic, "collides with existing topic: a.b" },
        { "POST", "/v1/topics", Json, """{"name":"__consumer_offsets","partitions":1,"replicationFactor":1}""", 400, ErrorCodes.InvalidTopic, "internal" },
        { "POST", "/v1/topics", Json, """{"name":"__mine","partitions":1,"replicationFactor":1}""", 400, ErrorCodes.InvalidTopic, "__" },
    };

    private const string Json = "application/json";

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task Bad_input_gets_a_4xx_problem_that_names_what_is_wrong_and_changes_nothing(
        string method, string path, string? contentType, string? body, int status, string code, string mentions)
    {
        var setup = fixture.Setup;
        var head = await LogHead.ReadAsync(setup.Cluster.Silos[0].Http);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            if (contentType is not null)
            {
                request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
            }
        }

        using var response = await setup.Cluster.Silos[0].Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(code, problem.GetProperty("code").GetString());
        var detail = problem.GetProperty("detail").GetString() ?? "";
        Assert.True(detail.Contains(mentions, StringComparison.Ordinal), $"'{mentions}' not in: {detail}");
        await LogHead.AssertUnmovedAsync(setup.Cluster.Silos[0].Http, head);
    }

    [Fact]
    public async Task Configs_given_as_numbers_or_booleans_are_accepted_as_Kafka_tools_send_them()
    {
        var setup = fixture.Setup;
        using var response = await setup.Cluster.Silos[0].Http.PostAsync("/v1/topics", new StringContent(
            """{"name":"numeric-configs","partitions":1,"replicationFactor":1,"configs":{"retention.ms":1000,"unclean.leader.election.enable":true}}""",
            Encoding.UTF8, Json));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        var configs = JsonDocument.Parse(text).RootElement.GetProperty("topic").GetProperty("configs");
        Assert.Equal("1000", configs.GetProperty("retention.ms").GetString());
        Assert.Equal("true", configs.GetProperty("unclean.leader.election.enable").GetString());

        // Later rows read the head from the silo's image: let it hold this write first.
        await setup.Client.GetMetadataAsync(minOffset: JsonDocument.Parse(text).RootElement.GetProperty("metadataOffset").GetInt64());
    }

    [Fact]
    public async Task Names_that_collide_on_dot_and_underscore_never_both_exist_even_when_created_at_once()
    {
        var setup = fixture.Setup;
        var attempts = await Task.WhenAll(new[] { "race.x", "race_x", "race.x", "race_x" }.Select(async name =>
        {
            try
            {
                return (name, Offset: (await setup.Client.CreateTopicAsync(new CreateTopicRequest(name, 1, 1))).MetadataOffset, Code: (string?)null);
            }
            catch (OrleansMeta.Client.MetaApiException refused)
            {
                return (name, Offset: 0L, Code: refused.Code);
            }
        }));

        var winner = Assert.Single(attempts, a => a.Code is null);
        Assert.All(attempts.Where(a => a.Code is not null), a => Assert.Equal(a.name == winner.name ? ErrorCodes.TopicAlreadyExists : ErrorCodes.InvalidTopic, a.Code));
        var topics = (await setup.Client.ListTopicsAsync(winner.Offset)).Topics.Select(t => t.Name).ToList();
        Assert.Contains(winner.name, topics);
        Assert.DoesNotContain(winner.name == "race.x" ? "race_x" : "race.x", topics);

        // Once the winner is deleted, the other spelling may be created.
        await setup.Client.DeleteTopicAsync(winner.name);
        var other = await setup.Client.CreateTopicAsync(new CreateTopicRequest(winner.name == "race.x" ? "race_x" : "race.x", 1, 1));
        await setup.Client.GetMetadataAsync(minOffset: other.MetadataOffset);
    }

    [Fact]
    public async Task A_request_line_too_long_gets_414_with_a_problem_body()
    {
        var setup = fixture.Setup;
        using var response = await setup.Cluster.Silos[0].Http.GetAsync("/v1/topics/" + new string('x', 20_000));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.RequestUriTooLong, $"got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(ErrorCodes.InvalidRequest, JsonDocument.Parse(text).RootElement.GetProperty("code").GetString());
    }
}

/// <summary>One small cluster for all rows: a silo, three brokers, and the topics "exists" and "a.b".</summary>
public sealed class StrictInputFixture : IAsyncLifetime
{
    private MetaSetup? _setup;

    internal MetaSetup Setup => _setup ?? throw new InvalidOperationException("The fixture has not started.");

    public async Task InitializeAsync()
    {
        _setup = await MetaSetup.StartAsync("strict-input", silos: 1, MetaSetup.SteadyBrokerSessions);
        await _setup.Client.CreateTopicAsync(new CreateTopicRequest("exists", 1, 3));
        var last = await _setup.Client.CreateTopicAsync(new CreateTopicRequest("a.b", 1, 1));
        await _setup.Client.GetMetadataAsync(minOffset: last.MetadataOffset);
    }

    public async Task DisposeAsync()
    {
        if (_setup is not null)
        {
            await _setup.DisposeAsync();
        }
    }
}
