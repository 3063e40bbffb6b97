using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;

namespace OrleansMeta.Cluster.Tests;

public sealed class BrokerLifecycleTests
{
    [Fact]
    public async Task Controlled_shutdown_moves_leadership_away_before_the_broker_is_told_it_may_stop()
    {
        await using var setup = await MetaSetup.StartAsync("controlled-shutdown");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("shipments", 6, 3));
        var leaving = setup.Brokers[0];
        Assert.Contains(created.Topic.Partitions, p => p.Leader == leaving.Id);
        await leaving.StopHeartbeatsAsync();

        // The broker asks to shut down (as Kafka brokers do, on every heartbeat); the controller moves its leadership away
        // and the broker is told to stop only once it leads nothing.
        BrokerHeartbeatResponse answer = null!;
        await Eventually.Until(async () =>
        {
            answer = await setup.Client.SendBrokerHeartbeatAsync(leaving.Id, new BrokerHeartbeatRequest(leaving.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset, WantShutDown: true));
            return answer.ShouldShutDown;
        }, "the broker is told it may stop", TimeSpan.FromSeconds(30));
        var metadata = await setup.Client.GetMetadataAsync(["shipments"], answer.MetadataOffset);
        Assert.All(metadata.Topics.Single().Partitions, p =>
        {
            Assert.NotEqual(leaving.Id, p.Leader);
            Assert.NotEqual(-1, p.Leader);
        });
        // As in Kafka, the broker is fenced the moment it is told it may stop (not when its session later expires).
        Assert.True(answer.IsFenced);
        Assert.Equal("fenced", (await setup.Client.ListBrokersAsync(answer.MetadataOffset)).Brokers.Single(b => b.BrokerId == leaving.Id).State);
    }

    [Fact]
    public async Task A_second_incarnation_is_refused_while_the_first_session_lives_and_stale_epochs_are_rejected()
    {
        await using var setup = await MetaSetup.StartAsync("incarnations");
        var broker = setup.Brokers[1];
        var imposter = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.RegisterBrokerAsync(broker.Id,
            new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "imposter", 9092)])));
        Assert.Equal(ErrorCodes.DuplicateBrokerRegistration, imposter.Code);

        // After its session expired, a new incarnation registers with a higher epoch; the old epoch is stale.
        await broker.StopHeartbeatsAsync();
        await Eventually.Until(async () => (await setup.Client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == broker.Id).State == "fenced",
            "the silent broker is fenced", TimeSpan.FromSeconds(30));
        var next = await setup.Client.RegisterBrokerAsync(broker.Id, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "new", 9092)]));
        Assert.True(next.BrokerEpoch > broker.Epoch);
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.SendBrokerHeartbeatAsync(broker.Id, new BrokerHeartbeatRequest(broker.Epoch, 0)));
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.Code);
    }

    [Fact]
    public async Task Imbalanced_leadership_is_restored_by_automatic_preferred_elections()
    {
        await using var setup = await MetaSetup.StartAsync("rebalance", settings: new Dictionary<string, string>
        {
            ["Meta:Controller:AutoLeaderRebalance"] = "true",
            ["Meta:Controller:LeaderImbalanceCheckInterval"] = "00:00:01",
        });
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("balanced", 6, 3));
        var broker = setup.Brokers[2];
        var preferred = created.Topic.Partitions.Where(p => p.Replicas[0] == broker.Id).Select(p => p.Partition).ToList();

        // Leadership moves away (controlled shutdown), the broker returns in sync, and the controller moves it back.
        await setup.Client.SendBrokerHeartbeatAsync(broker.Id, new BrokerHeartbeatRequest(broker.Epoch, (await setup.Client.GetMetadataAsync()).MetadataOffset, WantShutDown: true));
        await Eventually.Until(async () => (await setup.Client.DescribeTopicAsync("balanced")).Topic.Partitions.All(p => p.Leader != broker.Id),
            "leadership moved away", TimeSpan.FromSeconds(30));
        await broker.StopHeartbeatsAsync();
        await Eventually.Until(async () => (await setup.Client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == broker.Id).State == "fenced",
            "the broker is fenced", TimeSpan.FromSeconds(30));
        await using var back = new TestBroker(setup.Client, broker.Id);
        await back.StartAsync();
        await back.WaitUnfencedAsync();
        var metadata = await setup.Client.GetMetadataAsync(["balanced"]);
        foreach (var partition in metadata.Topics.Single().Partitions.Where(p => !p.Isr.Contains(broker.Id)))
        {
            var leader = setup.Brokers.Single(b => b.Id == partition.Leader);
            await setup.Client.AlterPartitionAsync("balanced", partition.Partition, new AlterPartitionRequest(
                leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch, [.. partition.Isr, broker.Id]));
        }

        await Eventually.Until(async () =>
        {
            var topic = (await setup.Client.DescribeTopicAsync("balanced")).Topic;
            return preferred.All(p => topic.Partitions[p].Leader == broker.Id);
        }, "the controller restored the preferred leaders on its own", TimeSpan.FromSeconds(30));
    }
}
