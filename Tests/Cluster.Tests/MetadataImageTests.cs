using System.Text.Json;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Cluster.Tests;

/// <summary>How the per-silo image applies metadata records.</summary>
public sealed class MetadataImageTests
{
    private long _offset;

    [Fact]
    public void Partition_changes_survive_added_partitions_and_a_recreated_topic_starts_afresh()
    {
        var id = Guid.NewGuid();
        var created = Topic("orders", id, 2);
        var image = MetadataImage.Empty.Apply([Record(RecordTypes.Topic, created)]);
        var moved = new PartitionState(1, [1, 2], [2], 2, 1, 1);
        image = image.Apply([Record(RecordTypes.Partition, new PartitionRecord(id, "orders", moved, "leader-elected", 1))]);

        // Growing the topic keeps partition 1's current state and adds partitions 2 and 3 in their initial state.
        image = image.Apply([Record(RecordTypes.Topic, created with { InitialPartitions = Topic("orders", id, 4).InitialPartitions, Change = "partitions-added" })]);
        Assert.Equal(4, image.Topics["orders"].Partitions.Length);
        var kept = image.Topics["orders"].Partitions[1];
        Assert.Equal((moved.Leader, moved.LeaderEpoch, moved.PartitionEpoch), (kept.Leader, kept.LeaderEpoch, kept.PartitionEpoch));
        Assert.Equal(moved.Isr, kept.Isr);
        Assert.Equal(1, image.Topics["orders"].Partitions[3].Leader);

        // Deleted, then created again under the same name: a different topic, and the old id's records no longer apply.
        image = image.Apply([Record(RecordTypes.Topic, created with { Deleted = true, InitialPartitions = [], Change = "deleted" })]);
        Assert.Empty(image.Topics);
        var recreated = Topic("orders", Guid.NewGuid(), 1);
        image = image.Apply([
            Record(RecordTypes.Topic, recreated),
            Record(RecordTypes.Partition, new PartitionRecord(id, "orders", moved with { Partition = 0 }, "stale", 1)),
        ]);
        Assert.Equal(recreated.TopicId, image.Topics["orders"].Topic.TopicId);
        Assert.Equal(1, image.Topics["orders"].Partitions[0].Leader);
        Assert.Null(image.FindTopic(id));
        Assert.Equal(_offset, image.Offset);
    }

    [Fact]
    public void A_gap_in_the_log_is_refused_rather_than_skipped()
    {
        var image = MetadataImage.Empty.Apply([Record(RecordTypes.Topic, Topic("a", Guid.NewGuid(), 1))]);
        _offset++;
        var error = Assert.Throws<InvalidOperationException>(() => image.Apply([Record(RecordTypes.Topic, Topic("b", Guid.NewGuid(), 1))]));
        Assert.Contains("gap", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_broker_keeps_the_offset_of_its_registration_across_later_changes()
    {
        var broker = new BrokerRecord(7, Guid.NewGuid(), 1, [], null, BrokerStates.Fenced, 0, "registered");
        var image = MetadataImage.Empty.Apply([
            Record(RecordTypes.Topic, Topic("x", Guid.NewGuid(), 1)),
            Record(RecordTypes.Broker, broker),
            Record(RecordTypes.Broker, broker with { State = BrokerStates.Unfenced, Change = "unfenced" }),
        ]);
        Assert.Equal(2, image.Brokers[7].RegistrationOffset);
        Assert.False(image.Brokers[7].IsFenced);
    }

    private static TopicRecord Topic(string name, Guid id, int partitions) => new(
        name, id, 2, new Dictionary<string, string>(),
        [.. Enumerable.Range(0, partitions).Select(p => new PartitionState(p, [1, 2], [1, 2], 1, 0, 0))], false, "created");

    private LoggedRecord Record<T>(string type, T value)
        => new(++_offset, type, "key", JsonSerializer.SerializeToUtf8Bytes(value, JsonSerializerOptions.Web), DateTimeOffset.UnixEpoch);
}
