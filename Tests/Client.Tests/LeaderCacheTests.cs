using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

public sealed class LeaderCacheTests
{
    private static readonly Guid OldId = Guid.Parse("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid NewId = Guid.Parse("00000000-0000-0000-0000-00000000000b");

    private static MetadataResponse Metadata(long offset, Guid topicId, params PartitionInfo[] partitions) =>
        Samples.Metadata(offset, Samples.TopicMetadata("orders", topicId, partitions));

    private static (int Leader, int Epoch)? Lookup(LeaderCache cache, int partition = 0) =>
        cache.TryGetLeader("orders", partition, out var leader, out var epoch) ? (leader, epoch) : null;

    [Fact]
    public void An_answer_with_an_older_leader_epoch_from_a_lagging_silo_is_ignored()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(20, OldId, Samples.Partition(0, leader: 2, leaderEpoch: 6)));

        cache.Update(Metadata(15, OldId, Samples.Partition(0, leader: 1, leaderEpoch: 5)));

        Assert.Equal((2, 6), Lookup(cache));
    }

    [Fact]
    public void An_answer_with_a_newer_leader_epoch_replaces_the_leader()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(15, OldId, Samples.Partition(0, 1, 5)));

        cache.Update(new PartitionResponse("orders", Samples.Partition(0, 3, 7), 30));

        Assert.Equal((3, 7), Lookup(cache));
    }

    [Fact]
    public void A_batched_alter_partition_answer_teaches_the_changed_partitions_and_skips_refused_ones()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(15, OldId, Samples.Partition(0, 1, 5), Samples.Partition(1, 1, 5)));

        cache.Update(new AlterPartitionsResponse(
        [
            new AlterPartitionTopicResult("orders", OldId,
            [
                new AlterPartitionResult(0, Samples.Partition(0, 3, 7)),
                new AlterPartitionResult(1, null, ErrorCodes.FencedLeaderEpoch, "stale", false),
            ]),
            new AlterPartitionTopicResult("never-made", null, [new AlterPartitionResult(0, null, ErrorCodes.UnknownTopicOrPartition, "no such topic")]),
        ], 30));

        Assert.Equal((3, 7), Lookup(cache, 0));
        Assert.Equal((1, 5), Lookup(cache, 1));
        Assert.False(cache.TryGetLeader("never-made", 0, out _, out _));
    }

    [Fact]
    public void Invalidating_with_a_stale_epoch_keeps_the_newer_leader()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(20, OldId, Samples.Partition(0, 2, 6)));

        Assert.False(cache.Invalidate("orders", 0, staleLeaderEpoch: 5));

        Assert.Equal((2, 6), Lookup(cache));
    }

    [Fact]
    public void Invalidating_the_held_epoch_drops_the_leader_and_still_ignores_older_answers()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(20, OldId, Samples.Partition(0, 2, 6)));

        Assert.True(cache.Invalidate("orders", 0, staleLeaderEpoch: 6));
        Assert.Null(Lookup(cache));

        cache.Update(Metadata(15, OldId, Samples.Partition(0, 1, 5)));
        Assert.Null(Lookup(cache));

        cache.Update(Metadata(25, OldId, Samples.Partition(0, 3, 7)));
        Assert.Equal((3, 7), Lookup(cache));
    }

    [Fact]
    public void A_recreated_topic_replaces_every_entry_of_the_old_one()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(20, OldId, Samples.Partition(0, 2, 9), Samples.Partition(1, 3, 9)));

        cache.Update(new TopicResponse(Samples.Topic("orders", NewId, Samples.Partition(0, 1, 0)), 40));

        Assert.Equal((1, 0), Lookup(cache)); // Leader epoch 0 is lower, but of another topic.
        Assert.Null(Lookup(cache, partition: 1));
    }

    [Fact]
    public void A_lagging_silo_that_still_sees_the_deleted_topic_does_not_bring_it_back()
    {
        var cache = new LeaderCache();
        cache.Update(new TopicResponse(Samples.Topic("orders", NewId, Samples.Partition(0, 1, 0)), 40));

        cache.Update(Metadata(20, OldId, Samples.Partition(0, 2, 9)));

        Assert.Equal((1, 0), Lookup(cache));
    }

    [Fact]
    public void A_deleted_topic_is_forgotten()
    {
        var cache = new LeaderCache();
        cache.Update(Metadata(20, OldId, Samples.Partition(0, 2, 9)));

        cache.Update(new DeleteTopicResponse("orders", OldId, 21));

        Assert.Null(Lookup(cache));
    }

    [Fact]
    public void A_partition_without_a_leader_is_not_served()
    {
        var cache = new LeaderCache();

        cache.Update(Metadata(20, OldId, Samples.Partition(0, leader: -1, leaderEpoch: 4)));

        Assert.Null(Lookup(cache));
    }

    [Fact]
    public async Task Concurrent_updates_leave_the_highest_epoch()
    {
        var cache = new LeaderCache();

        await Task.WhenAll(Enumerable.Range(0, 200).Select(epoch => Task.Run(() =>
            cache.Update(Metadata(epoch, OldId, Samples.Partition(0, epoch % 5, epoch))))));

        Assert.Equal((199 % 5, 199), Lookup(cache));
    }
}
