using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>Every endpoint against a silo that answers with canned records: the request goes to the right method and
/// path with a camelCase body, and the answer deserializes.</summary>
public sealed class EndpointTests : IAsyncLifetime
{
    private static readonly TopicDescription Orders = Samples.Topic("orders", Samples.TopicId, Samples.Partition(0, 1, 4), Samples.Partition(1, 2, 9));
    private FakeSilo _silo = null!;
    private MetaClient _client = null!;

    public async Task InitializeAsync()
    {
        _silo = await FakeSilo.StartAsync(app =>
        {
            app.MapPost("/v1/brokers/{id:int}/registration", (int id) => Results.Ok(new BrokerRegistrationResponse(id, 42, 42)));
            app.MapPost("/v1/brokers/{id:int}/heartbeat", (int id) => Results.Ok(new BrokerHeartbeatResponse(false, true, false, 50)));
            app.MapGet("/v1/brokers", () => Results.Ok(new BrokersResponse([Samples.Broker], 50)));
            app.MapPost("/v1/topics", () => Results.Created("/v1/topics/orders", new TopicResponse(Orders, 51)));
            app.MapGet("/v1/topics", () => Results.Ok(new TopicsResponse([new TopicSummary("orders", Samples.TopicId, 2, 3)], 51)));
            app.MapGet("/v1/topics/{name}", (string name) => Results.Ok(new TopicResponse(Orders with { Name = name }, 51)));
            app.MapDelete("/v1/topics/{name}", (string name) => Results.Ok(new DeleteTopicResponse(name, Samples.TopicId, 52)));
            app.MapPost("/v1/topics/{name}/partitions", () => Results.Ok(new TopicResponse(Orders, 53)));
            app.MapPatch("/v1/topics/{name}/configs", () => Results.Ok(new TopicConfigsResponse(Orders.Name, Orders.TopicId, [new TopicConfigEntry("retention.ms", "604800000", true, "DEFAULT_CONFIG")], 54)));
            app.MapPost("/v1/topics/{name}/partitions/{p:int}/isr", (string name, int p) =>
                Results.Ok(new PartitionResponse(name, Samples.Partition(p, 1, 4) with { Isr = [1, 2] }, 55)));
            app.MapPost("/v1/elections", () => Results.Ok(new ElectionResponse([new ElectionResult("orders", 0, 1, 5, null, null)], 56)));
            app.MapGet("/v1/metadata", () => Results.Ok(Samples.Metadata(57, Samples.TopicMetadata("orders", Samples.TopicId, Samples.Partition(0, 1, 4)))));
            app.MapGet("/v1/cluster", () => Results.Ok(new ClusterInfo("meta-test", 3, DateTimeOffset.UnixEpoch, "127.0.0.1:1",
                [new SiloInfo("127.0.0.1:1", 1, "silo-0", "Active", DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 0, true)], new ControllerInfo("silo-0", 7))));
        });
        _client = Samples.Client(_silo.Url);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _silo.DisposeAsync();
    }

    private RecordedRequest LastRequest => _silo.Requests[^1];

    [Fact]
    public async Task Registering_a_broker_posts_the_registration_and_returns_its_epoch()
    {
        var incarnation = Guid.NewGuid();
        var response = await _client.RegisterBrokerAsync(7, new BrokerRegistrationRequest(incarnation, [new BrokerListener("PLAINTEXT", "b7", 9092)], "rack-a"));

        Assert.Equal(new BrokerRegistrationResponse(7, 42, 42), response);
        Assert.Equal(("POST", "/v1/brokers/7/registration"), (LastRequest.Method, LastRequest.RawTarget));
        using var body = JsonDocument.Parse(LastRequest.Body);
        Assert.Equal(incarnation, body.RootElement.GetProperty("incarnationId").GetGuid());
        Assert.Equal("b7", body.RootElement.GetProperty("listeners")[0].GetProperty("host").GetString());
    }

    [Fact]
    public async Task A_heartbeat_posts_the_broker_epoch_and_returns_the_fencing_state()
    {
        var response = await _client.SendBrokerHeartbeatAsync(7, new BrokerHeartbeatRequest(42, 49));

        Assert.Equal(new BrokerHeartbeatResponse(false, true, false, 50), response);
        Assert.Equal(("POST", "/v1/brokers/7/heartbeat"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Contains("\"brokerEpoch\":42", LastRequest.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Listing_brokers_passes_min_offset_and_deserializes_listeners()
    {
        var response = await _client.ListBrokersAsync(minOffset: 49);

        Assert.Equal("/v1/brokers?minOffset=49", LastRequest.RawTarget);
        var broker = Assert.Single(response.Brokers);
        Assert.Equal(Samples.Broker.Listeners, broker.Listeners);
        Assert.Equal(("rack-a", "unfenced", 50L), (broker.Rack, broker.State, response.MetadataOffset));
    }

    [Fact]
    public async Task Creating_a_topic_returns_it_and_feeds_the_leader_cache()
    {
        var response = await _client.CreateTopicAsync(new CreateTopicRequest("orders", Partitions: 2, ReplicationFactor: 3,
            Configs: new Dictionary<string, string> { ["retention.ms"] = "60000" }));

        Assert.Equal(("POST", "/v1/topics"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Contains("\"replicationFactor\":3", LastRequest.Body, StringComparison.Ordinal);
        Assert.Equal(Samples.TopicId, response.Topic.TopicId);
        Assert.Equal("60000", response.Topic.Configs["retention.ms"]);
        Assert.True(_client.Leaders.TryGetLeader("orders", 1, out var leader, out var epoch));
        Assert.Equal((2, 9), (leader, epoch));
    }

    [Fact]
    public async Task Listing_topics_returns_summaries()
    {
        var response = await _client.ListTopicsAsync();

        Assert.Equal("/v1/topics", LastRequest.RawTarget);
        Assert.Equal(new TopicSummary("orders", Samples.TopicId, 2, 3), Assert.Single(response.Topics));
    }

    [Fact]
    public async Task Describing_a_topic_escapes_its_name_in_the_path()
    {
        var response = await _client.DescribeTopicAsync("odd name/with?chars", minOffset: 3);

        Assert.Equal("/v1/topics/odd%20name%2Fwith%3Fchars?minOffset=3", LastRequest.RawTarget);
        Assert.Equal("odd name%2Fwith?chars", response.Topic.Name); // Kestrel keeps %2F encoded in route values.
        Assert.Equal(2, response.Topic.Partitions.Count);
    }

    [Fact]
    public async Task Deleting_a_topic_sends_a_delete_and_returns_the_deleted_id()
    {
        var response = await _client.DeleteTopicAsync("orders");

        Assert.Equal(("DELETE", "/v1/topics/orders"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Equal(new DeleteTopicResponse("orders", Samples.TopicId, 52), response);
    }

    [Fact]
    public async Task Adding_partitions_posts_the_total_count()
    {
        var response = await _client.AddPartitionsAsync("orders", new AddPartitionsRequest(4));

        Assert.Equal(("POST", "/v1/topics/orders/partitions"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Contains("\"totalCount\":4", LastRequest.Body, StringComparison.Ordinal);
        Assert.Equal(53, response.MetadataOffset);
    }

    [Fact]
    public async Task Altering_configs_sends_a_patch_with_null_for_removed_keys()
    {
        var response = await _client.AlterTopicConfigsAsync("orders", new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = null }));

        Assert.Equal(("PATCH", "/v1/topics/orders/configs"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Contains("\"retention.ms\":null", LastRequest.Body, StringComparison.Ordinal);
        Assert.Equal(54, response.MetadataOffset);
        Assert.Equal(Orders.TopicId, response.TopicId);
        Assert.True(response.Configs.Single().IsDefault);
    }

    [Fact]
    public async Task Altering_a_partition_posts_the_new_isr_and_returns_the_partition()
    {
        var response = await _client.AlterPartitionAsync("orders", 3, new AlterPartitionRequest(1, 42, 4, 4, [1, 2]));

        Assert.Equal(("POST", "/v1/topics/orders/partitions/3/isr"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Contains("\"newIsr\":[1,2]", LastRequest.Body, StringComparison.Ordinal);
        Assert.Equal([1, 2], response.Partition.Isr);
        Assert.Equal(3, response.Partition.Partition);
    }

    [Fact]
    public async Task Electing_leaders_returns_a_result_per_partition()
    {
        var response = await _client.ElectLeadersAsync(new ElectionRequest("preferred", [new TopicPartitions("orders", [0])]));

        Assert.Equal(("POST", "/v1/elections"), (LastRequest.Method, LastRequest.RawTarget));
        Assert.Equal(new ElectionResult("orders", 0, 1, 5, null, null), Assert.Single(response.Results));
    }

    [Fact]
    public async Task Reading_metadata_lists_topics_and_min_offset_in_the_query()
    {
        var response = await _client.GetMetadataAsync(["orders", "payments"], minOffset: 57);

        Assert.Equal("/v1/metadata?topics=orders,payments&minOffset=57", LastRequest.RawTarget);
        Assert.Equal(new ControllerInfo("silo-0", 7), response.Controller);
        Assert.Equal(4, Assert.Single(response.Topics).Partitions[0].LeaderEpoch);
    }

    [Fact]
    public async Task Reading_metadata_of_every_topic_sends_no_topics_parameter()
    {
        await _client.GetMetadataAsync();

        Assert.Equal("/v1/metadata", LastRequest.RawTarget);
    }

    [Fact]
    public async Task Reading_the_cluster_returns_the_silos()
    {
        var response = await _client.GetClusterAsync();

        Assert.Equal("meta-test", response.ClusterId);
        Assert.True(Assert.Single(response.Silos).IsSelf);
    }

    [Fact]
    public async Task Get_leader_fetches_metadata_on_a_miss_and_serves_later_calls_from_the_cache()
    {
        var first = await _client.GetLeaderAsync("orders", 0);
        var second = await _client.GetLeaderAsync("orders", 0);

        Assert.Equal(new PartitionLeader(1, 4), first);
        Assert.Equal(first, second);
        Assert.Equal(1, _silo.Hits);
        Assert.Equal("/v1/metadata?topics=orders", LastRequest.RawTarget);
    }

    [Fact]
    public async Task Get_leader_of_a_partition_the_metadata_lacks_throws_unknown_topic_or_partition()
    {
        var error = await Assert.ThrowsAsync<MetaApiException>(() => _client.GetLeaderAsync("orders", 9).AsTask());

        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, error.Code);
    }
}
