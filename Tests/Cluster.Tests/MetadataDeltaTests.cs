using System.Text.Json;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Metadata deltas end to end: silos on PostgreSQL, brokers heartbeating, changes made through the API.</summary>
public sealed class MetadataDeltaTests
{
    [Fact]
    public async Task The_answer_at_N_with_the_delta_since_N_applied_equals_the_answer_at_M_after_every_kind_of_change()
    {
        await using var setup = await MetaSetup.StartAsync("deltas", silos: 2);
        var client = setup.Client;
        await client.CreateTopicAsync(new CreateTopicRequest("configs", 3, 2));
        await client.CreateTopicAsync(new CreateTopicRequest("grows", 2, 2));
        await client.CreateTopicAsync(new CreateTopicRequest("isr", 4, 3));
        await client.CreateTopicAsync(new CreateTopicRequest("leaders", 6, 3));
        var last = await client.CreateTopicAsync(new CreateTopicRequest("doomed", 1, 1));
        var atN = await client.GetMetadataAsync(topics: null, minOffset: last.MetadataOffset);

        // Nothing changed yet: the delta since the current offset is empty.
        var nothing = await client.GetMetadataDeltaAsync(atN.MetadataOffset);
        Assert.Null(nothing.Full);
        Assert.Empty(nothing.Topics);
        Assert.Empty(nothing.DeletedTopics);

        // A chain of deltas, each since the view before it, must track the answer as closely as one delta since N.
        var chained = atN;
        async Task StepAsync() => chained = MetadataView.Apply(chained, await client.GetMetadataDeltaAsync(chained.MetadataOffset));

        await client.AlterTopicConfigsAsync("configs", new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = "60000" }));
        await client.AddPartitionsAsync("grows", new AddPartitionsRequest(5));
        await StepAsync();

        // The leader of isr-0 drops one follower from its ISR (AlterPartition): that partition alone changes.
        var isr = atN.Topics.Single(t => t.Name == "isr").Partitions[0];
        var leader = setup.Brokers.Single(b => b.Id == isr.Leader);
        var shrunk = await client.AlterPartitionAsync("isr", 0, new AlterPartitionRequest(
            leader.Id, leader.Epoch, isr.LeaderEpoch, isr.PartitionEpoch, [.. isr.Isr.Where(r => r != leader.Id).Take(1).Prepend(leader.Id)]));
        var isrDelta = await client.GetMetadataDeltaAsync(atN.MetadataOffset, null, minOffset: shrunk.MetadataOffset);
        Assert.Equal([0], isrDelta.Topics.Single(t => t.Name == "isr").Partitions.Select(p => p.Partition));
        Assert.DoesNotContain(isrDelta.Topics, t => t.Name == "configs");
        Assert.Equal([2, 3, 4], isrDelta.Topics.Single(t => t.Name == "grows").Partitions.Select(p => p.Partition));
        await StepAsync();

        await client.DeleteTopicAsync("doomed");
        await using var newcomer = new TestBroker(client, 4, "d");
        await newcomer.StartAsync();
        await newcomer.WaitUnfencedAsync();
        await StepAsync();

        // Broker 3 dies: its session expires, it is fenced, and leadership moves off it.
        var victim = setup.Brokers.Single(b => b.Id == 3);
        await victim.StopHeartbeatsAsync();
        await Eventually.Until(async () =>
        {
            var now = await client.GetMetadataAsync(["leaders"]);
            return now.Topics[0].Partitions.All(p => p.Leader != victim.Id);
        }, "broker 3 leads nothing", TimeSpan.FromSeconds(30));
        await StepAsync();

        // Compare once a full answer and a delta are at the same offset (the cluster settles after the fencing).
        await Eventually.Until(async () =>
        {
            var delta = await client.GetMetadataDeltaAsync(atN.MetadataOffset);
            var atM = await client.GetMetadataAsync(topics: null, minOffset: delta.MetadataOffset);
            if (atM.MetadataOffset != delta.MetadataOffset)
            {
                return false;
            }

            Assert.Null(delta.Full);
            Assert.Contains(delta.DeletedTopics, t => t.Name == "doomed");
            Assert.Contains(delta.Brokers, b => b.BrokerId == 4);
            Assert.Contains(delta.Brokers, b => b.BrokerId == 3 && b.State == "fenced");
            Assert.Equal(Json(atM), Json(MetadataView.Apply(atN, delta)));

            chained = MetadataView.Apply(chained, await client.GetMetadataDeltaAsync(chained.MetadataOffset, null, minOffset: atM.MetadataOffset));
            Assert.Equal(atM.MetadataOffset, chained.MetadataOffset);
            Assert.Equal(Json(atM), Json(chained));
            return true;
        }, "a delta and a full answer at one offset", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Every_silo_answers_a_delta_since_an_offset_another_silo_returned_waiting_for_its_image_if_needed()
    {
        await using var setup = await MetaSetup.StartAsync("deltas-silos", silos: 2);
        var atN = await setup.Client.GetMetadataAsync();
        var written = await setup.Client.CreateTopicAsync(new CreateTopicRequest("fresh", 2, 2));
        foreach (var silo in setup.Cluster.Running)
        {
            using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [silo.Http.BaseAddress!] });
            var delta = await client.GetMetadataDeltaAsync(written.MetadataOffset - 1, null, minOffset: written.MetadataOffset);
            Assert.True(delta.MetadataOffset >= written.MetadataOffset);
            var topic = Assert.Single(delta.Topics, t => t.Name == "fresh");
            Assert.Equal(2, topic.Partitions.Count);
            Assert.True(client.Leaders.TryGetLeader("fresh", 0, out _, out _), "a delta feeds the leader cache");
            var applied = MetadataView.Apply(atN, await client.GetMetadataDeltaAsync(atN.MetadataOffset, ["fresh"]));
            Assert.Equal(2, Assert.Single(applied.Topics, t => t.Name == "fresh").Partitions.Count);
        }
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, JsonSerializerOptions.Web);
}
