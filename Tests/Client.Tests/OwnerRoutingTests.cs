using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>A topic's writes, a partition's AlterPartition and a broker's heartbeats go to the silo owning their grain
/// once a silo that forwarded one named it (<see cref="RoutingHeaders.Owner"/>); each grain is learned on its own.</summary>
public sealed class OwnerRoutingTests
{
    private static readonly AlterConfigsRequest Configs = new(new Dictionary<string, string?> { ["retention.ms"] = "1000" });
    private static readonly AlterPartitionRequest Isr = new(1, 10, 4, 7, [1, 2]);

    [Fact]
    public async Task A_named_owner_takes_the_same_topics_partitions_and_brokers_writes_and_nothing_else()
    {
        await using var owner = await FakeSilo.StartAsync(app => MapWrites(app, null));
        await using var bootstrap = await FakeSilo.StartAsync(app => MapWrites(app, owner.Url));
        using var client = Samples.Client(bootstrap.Url);

        // First write of each grain: forwarded by the bootstrap silo, which names the owner.
        await client.AlterTopicConfigsAsync("orders", Configs);
        await client.AlterPartitionAsync("orders", 0, Isr);
        await client.SendBrokerHeartbeatAsync(3, new BrokerHeartbeatRequest(10, 50, false));
        Assert.Equal(3, bootstrap.Hits);

        // The same grains again: straight to the owner.
        await client.AlterTopicConfigsAsync("orders", Configs);
        await client.AlterPartitionAsync("orders", 0, Isr);
        await client.SendBrokerHeartbeatAsync(3, new BrokerHeartbeatRequest(10, 50, false));
        Assert.Equal(3, owner.Hits);

        // Other grains (another topic, another partition of the same topic, another broker) and reads are not routed.
        await client.AlterTopicConfigsAsync("payments", Configs);
        await client.AlterPartitionAsync("orders", 1, Isr);
        await client.SendBrokerHeartbeatAsync(4, new BrokerHeartbeatRequest(10, 50, false));
        await client.DescribeTopicConfigsAsync("orders");
        Assert.Equal(7, bootstrap.Hits);
        Assert.Equal(3, owner.Hits);

        Assert.Equal(owner.Url, client.OwnerOf("topic/orders"));
        Assert.Equal(owner.Url, client.OwnerOf("partition/orders/0"));
        Assert.Equal(owner.Url, client.OwnerOf("partition/orders/1"));
        Assert.Equal(owner.Url, client.OwnerOf("broker/3"));
        Assert.Null(client.CoordinatorOf("orders")); // a group of the same name is another grain
    }

    [Fact]
    public async Task When_the_owner_refuses_connections_a_partitions_write_goes_to_the_bootstrap_silo_once_and_is_not_sent_twice()
    {
        var gone = FakeSilo.RefusingUrl();
        await using var bootstrap = await FakeSilo.StartAsync(app => MapWrites(app, gone));
        using var client = Samples.Client(bootstrap.Url);
        await client.AlterPartitionAsync("orders", 0, Isr);
        Assert.Equal(gone, client.OwnerOf("partition/orders/0"));

        // Refused before any byte was sent, so the non-idempotent POST may go to the bootstrap silo, which takes it.
        var response = await client.AlterPartitionAsync("orders", 0, Isr);

        Assert.Equal(55, response.MetadataOffset);
        Assert.Equal(2, bootstrap.Hits);
        Assert.Null(client.OwnerOf("partition/orders/0")); // named again, but it failed a moment ago
    }

    /// <summary>Answers topic config changes, AlterPartition and broker heartbeats (and a config read); with
    /// <paramref name="owner"/>, as a silo that forwarded the writes to it (naming it in the header).</summary>
    private static void MapWrites(WebApplication app, Uri? owner)
    {
        void Name(HttpContext context) => FakeSilo.NameOwner(context, RoutingHeaders.Owner, owner);

        app.MapPatch("/v1/topics/{name}/configs", (string name, HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new TopicConfigsResponse(name, Guid.NewGuid(), [], 54));
        });
        app.MapGet("/v1/topics/{name}/configs", (string name, HttpContext context) =>
        {
            Name(context); // a read answered from any silo's image is never routed, whatever the header says
            return Results.Ok(new TopicConfigsResponse(name, Guid.NewGuid(), [], 54));
        });
        app.MapPost("/v1/topics/{name}/partitions/{p:int}/isr", (string name, int p, HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new PartitionResponse(name, Samples.Partition(p, 1, 4) with { Isr = [1, 2] }, 55));
        });
        app.MapPost("/v1/brokers/{id:int}/heartbeat", (HttpContext context) =>
        {
            Name(context);
            return Results.Ok(new BrokerHeartbeatResponse(false, true, false, 50));
        });
    }
}
