using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The Metadata answer as Kafka gives it, config describe with defaults and sources, and validateOnly.</summary>
public sealed class MetadataAnswerTests
{
    [Fact]
    public async Task Metadata_names_the_cluster_and_controller_flags_internal_topics_and_lists_fenced_brokers_only_when_asked()
    {
        await using var setup = await MetaSetup.StartAsync("metadata-answer", silos: 1);
        var http = setup.Cluster.Silos[0].Http;
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("orders", 2, 3));

        var metadata = await setup.Client.GetMetadataAsync(minOffset: created.MetadataOffset);
        Assert.Equal(setup.Cluster.ClusterId, metadata.ClusterId);
        Assert.False(metadata.Topics.Single().IsInternal);
        Assert.All(metadata.Topics.Single().Partitions, p => Assert.Empty(p.OfflineReplicas));
        Assert.Equal([1, 2, 3], metadata.Brokers.Select(b => b.BrokerId));
        await Eventually.Until(async () => (await setup.Client.GetMetadataAsync()).Controller is { Silo: not null, Epoch: > 0 },
            "the answer names the controller's silo and epoch", TimeSpan.FromSeconds(30));

        var internalTopic = (await setup.Client.GetMetadataAsync(["__consumer_offsets"])).Topics.Single();
        Assert.True(internalTopic.IsInternal);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, internalTopic.ErrorCode);

        // Broker 3 dies: fenced, it leaves the default broker list, and its replicas are offline.
        await setup.Brokers[2].StopHeartbeatsAsync();
        await Eventually.Until(async () => (await setup.Client.GetMetadataAsync()).Brokers.All(b => b.BrokerId != 3),
            "the fenced broker is no longer listed", TimeSpan.FromSeconds(30));
        metadata = await setup.Client.GetMetadataAsync(["orders"]);
        Assert.All(metadata.Topics.Single().Partitions, p => Assert.Equal([3], p.OfflineReplicas));

        var all = await http.GetFromJsonAsync<MetadataResponse>("/v1/metadata?includeFenced=true", JsonSerializerOptions.Web);
        Assert.Equal("fenced", all!.Brokers.Single(b => b.BrokerId == 3).State);
        Assert.Equal(3, all.Brokers.Count);
    }

    [Fact]
    public async Task Topic_configs_are_described_with_every_default_and_where_each_value_comes_from()
    {
        await using var setup = await MetaSetup.StartAsync("describe-configs", silos: 1);
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("logs", 1, 1, new Dictionary<string, string> { ["retention.ms"] = "1000" }));

        var configs = await setup.Cluster.Silos[0].Http.GetFromJsonAsync<TopicConfigsResponse>(
            $"/v1/topics/logs/configs?minOffset={created.MetadataOffset}", JsonSerializerOptions.Web);

        Assert.Equal(12, configs!.Configs.Count);
        Assert.Equal(new TopicConfigEntry("retention.ms", "1000", false, "DYNAMIC_TOPIC_CONFIG"), configs.Configs.Single(c => c.Name == "retention.ms"));
        Assert.Equal(new TopicConfigEntry("cleanup.policy", "delete", true, "DEFAULT_CONFIG"), configs.Configs.Single(c => c.Name == "cleanup.policy"));
        Assert.Equal(new TopicConfigEntry("min.insync.replicas", "1", true, "DEFAULT_CONFIG"), configs.Configs.Single(c => c.Name == "min.insync.replicas"));
        var missing = await setup.Cluster.Silos[0].Http.GetAsync("/v1/topics/never-created/configs");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task ValidateOnly_create_alter_and_add_partitions_answer_as_if_done_and_write_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("validate-only", silos: 1, MetaSetup.SteadyBrokerSessions);
        var http = setup.Cluster.Silos[0].Http;
        var existing = await setup.Client.CreateTopicAsync(new CreateTopicRequest("kept", 1, 1));
        var head = (await setup.Client.GetMetadataAsync(minOffset: existing.MetadataOffset)).MetadataOffset;

        var dryCreate = await http.PostAsync("/v1/topics", Json("""{"name":"dry","partitions":4,"replicationFactor":2,"configs":{"retention.ms":"5000"},"validateOnly":true}"""));
        var created = JsonDocument.Parse(await dryCreate.Content.ReadAsStringAsync()).RootElement.GetProperty("topic");
        Assert.Equal(HttpStatusCode.OK, dryCreate.StatusCode);
        Assert.Equal(4, created.GetProperty("partitions").GetArrayLength());
        Assert.Equal("5000", created.GetProperty("configs").GetProperty("retention.ms").GetString());

        var badDryCreate = await http.PostAsync("/v1/topics", Json("""{"name":"dry","partitions":0,"validateOnly":true}"""));
        Assert.Equal(HttpStatusCode.BadRequest, badDryCreate.StatusCode);
        Assert.Contains(ErrorCodes.InvalidPartitions, await badDryCreate.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var dryAlter = await http.PatchAsync("/v1/topics/kept/configs", Json("""{"configs":{"cleanup.policy":"compact"},"validateOnly":true}"""));
        Assert.Equal(HttpStatusCode.OK, dryAlter.StatusCode);
        var dryConfigs = JsonDocument.Parse(await dryAlter.Content.ReadAsStringAsync()).RootElement.GetProperty("configs").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => (Value: c.GetProperty("value").GetString(), Source: c.GetProperty("source").GetString()));
        Assert.Equal(("compact", "DYNAMIC_TOPIC_CONFIG"), dryConfigs["cleanup.policy"]);
        var badDryAlter = await http.PatchAsync("/v1/topics/kept/configs", Json("""{"configs":{"cleanup.policy":"shred"},"validateOnly":true}"""));
        Assert.Equal(HttpStatusCode.BadRequest, badDryAlter.StatusCode);

        var dryGrow = await http.PostAsync("/v1/topics/kept/partitions", Json("""{"totalCount":3,"validateOnly":true}"""));
        Assert.Equal(HttpStatusCode.OK, dryGrow.StatusCode);
        Assert.Equal(3, JsonDocument.Parse(await dryGrow.Content.ReadAsStringAsync()).RootElement.GetProperty("topic").GetProperty("partitions").GetArrayLength());

        // Through the SDK too; a dry run's would-be leaders never reach its leader cache.
        var sdkDry = await setup.Client.CreateTopicAsync(new CreateTopicRequest("dry-sdk", 2, 1, ValidateOnly: true));
        Assert.Equal(2, sdkDry.Topic.Partitions.Count);
        Assert.False(setup.Client.Leaders.TryGetLeader("dry-sdk", 0, out _, out _));

        await LogHead.AssertUnmovedAsync(http, head);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/v1/topics/dry")).StatusCode);
        var kept = (await setup.Client.DescribeTopicAsync("kept")).Topic;
        Assert.Empty(kept.Configs);
        Assert.Single(kept.Partitions);
    }

    [Fact]
    public async Task The_OpenAPI_document_lists_problem_responses_with_codes_and_enums()
    {
        await using var setup = await MetaSetup.StartAsync("openapi", silos: 1);
        var document = JsonDocument.Parse(await setup.Cluster.Silos[0].Http.GetStringAsync("/openapi/v1.json")).RootElement;

        var create = document.GetProperty("paths").GetProperty("/v1/topics").GetProperty("post");
        foreach (var status in new[] { "400", "409", "413", "415", "503" })
        {
            Assert.True(create.GetProperty("responses").GetProperty(status).GetProperty("content").TryGetProperty("application/problem+json", out _), status);
        }

        Assert.Contains(ErrorCodes.TopicAlreadyExists, create.GetProperty("description").GetString(), StringComparison.Ordinal);
        var schemas = document.GetProperty("components").GetProperty("schemas");
        var problem = schemas.GetProperty("ProblemDetails").GetProperty("properties");
        Assert.Contains(problem.GetProperty("code").GetProperty("enum").EnumerateArray(), v => v.GetString() == ErrorCodes.InvalidRequest);
        Assert.Equal(JsonValueKind.Object, problem.GetProperty("retryable").ValueKind);
        var electionType = schemas.GetProperty("ElectionRequest").GetProperty("properties").GetProperty("type");
        Assert.Equal(["preferred", "unclean"], electionType.GetProperty("enum").EnumerateArray().Select(v => v.GetString()));

        foreach (var path in document.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/v1/", StringComparison.Ordinal)))
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                Assert.True(operation.Value.GetProperty("responses").TryGetProperty("400", out _), $"{operation.Name} {path.Name} lists no 400");
            }
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
