using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests;

/// <summary><see cref="MetadataCache"/> holds brokers from the watch, on a real silo: what a producer needs to reach a
/// partition's leader.</summary>
public sealed class MetadataCacheBrokerTests
{
    [Fact]
    public async Task The_cache_holds_brokers_from_the_snapshot_and_records_and_resolves_a_leaders_endpoint()
    {
        await using var setup = await MetaSetup.StartAsync("cache-brokers", silos: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("produce", 3, 1));
        var topic = created.Topic;

        // Brokers 1 to 3 come from the snapshot.
        using var client = setup.Cluster.CreateClient();
        await using var cache = new MetadataCache(client);
        await cache.StartAsync(stop.Token);

        // The snapshot comes from the silo's image, which may not hold the topic yet: wait for the write's offset.
        await cache.WaitForOffsetAsync(created.MetadataOffset, stop.Token);
        Assert.Equal([1, 2, 3], cache.Brokers.Select(b => b.BrokerId));
        var one = cache.GetBroker(1)!;
        Assert.Equal((setup.Brokers[0].Epoch, "a", "unfenced"), (one.BrokerEpoch, one.Rack, one.State));
        Assert.Equal([new BrokerListener("PLAINTEXT", "broker-1.test", 9092)], one.Listeners);

        // A leader's endpoint: the leader's listener, by name or the first.
        var partition = topic.Partitions[2];
        Assert.True(cache.TryGetLeaderEndpoint("produce", 2, out var endpoint));
        Assert.Equal((partition.Leader, partition.LeaderEpoch, $"broker-{partition.Leader}.test", 9092),
            (endpoint.BrokerId, endpoint.LeaderEpoch, endpoint.Listener.Host, endpoint.Listener.Port));
        Assert.True(cache.TryGetLeaderEndpoint("produce", 2, out _, "PLAINTEXT"));
        Assert.False(cache.TryGetLeaderEndpoint("produce", 2, out _, "SSL"));
        Assert.False(cache.TryGetLeaderEndpoint("produce", 9, out _));
        Assert.False(cache.TryGetLeaderEndpoint("absent", 0, out _));

        // A broker that registers is seen, with the epoch its registration returned, and its listeners and rack.
        var registered = await setup.Client.RegisterBrokerAsync(7, new BrokerRegistrationRequest(
            Guid.NewGuid(), [new BrokerListener("INTERNAL", "broker-7.internal", 9093), new BrokerListener("EXTERNAL", "broker-7.example", 19093, "SSL")], "r7"));
        await cache.WaitForOffsetAsync(registered.MetadataOffset, stop.Token);
        var seven = cache.GetBroker(7);
        Assert.NotNull(seven);
        Assert.Equal((registered.BrokerEpoch, "r7", "fenced"), (seven.BrokerEpoch, seven.Rack, seven.State));
        Assert.Equal(["INTERNAL", "EXTERNAL"], seven.Listeners.Select(l => l.Name));
        Assert.Equal(("broker-7.example", 19093, "SSL"), (seven.Listeners[1].Host, seven.Listeners[1].Port, seven.Listeners[1].SecurityProtocol));

        // Unregistered (once its session, never heartbeated, has run out): gone.
        BrokerUnregistrationResponse? unregistered = null;
        await Eventually.Until(async () =>
        {
            try
            {
                unregistered = await setup.Client.UnregisterBrokerAsync(7, stop.Token);
                return true;
            }
            catch (MetaApiException e) when (e.Code == ErrorCodes.BrokerSessionAlive)
            {
                return false;
            }
        }, "broker 7 can be unregistered", TimeSpan.FromSeconds(30));
        await cache.WaitForOffsetAsync(unregistered!.MetadataOffset, stop.Token);
        Assert.Null(cache.GetBroker(7));
        Assert.Equal([1, 2, 3], cache.Brokers.Select(b => b.BrokerId));

        // A state change reaches the cache too: broker 3 stops heartbeating and is fenced.
        await setup.Brokers[2].StopHeartbeatsAsync();
        await Eventually.Until(() => Task.FromResult(cache.GetBroker(3)?.State == "fenced"), "the cache sees broker 3 fenced", TimeSpan.FromSeconds(60));
    }
}
