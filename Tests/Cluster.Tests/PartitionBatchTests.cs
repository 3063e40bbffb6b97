using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The controller's batched path: one relay call per batch of partitions (IPartitionBatchGrain).</summary>
public sealed class PartitionBatchTests
{
    [Fact]
    public async Task A_batch_changes_every_partition_and_a_failing_one_costs_none_of_the_others()
    {
        await using var setup = await MetaSetup.StartAsync("batch-partial");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("spread", 12, 3));
        var epoch = (await setup.Client.GetClusterAsync()).Controller!.Epoch;
        var missing = PartitionKeys.For(Guid.NewGuid(), 0);
        var keys = Enumerable.Range(0, 12).Select(p => PartitionKeys.For(created.Topic.TopicId, p)).Append(missing).ToList();

        // Broker 1 moves out of the way (as in a controlled shutdown) for all twelve; the thirteenth does not exist.
        var result = await Relay(setup).ApplyAsync(new PartitionBatch(Command(setup, PartitionCommandKind.MoveLeadershipAway, epoch, created.MetadataOffset), keys));

        var failure = Assert.Single(result.Failures);
        Assert.Equal((missing, ErrorCodes.UnknownTopicOrPartition), (failure.Partition, failure.ErrorCode));
        Assert.Equal(12, result.Changes.Count);
        Assert.All(result.Changes, c => Assert.True(c.State.Leader != 1 && !c.State.Isr.Contains(1), $"partition {c.State.Partition} still has broker 1"));
        var visible = (await setup.Client.DescribeTopicAsync("spread", result.Changes.Max(c => c.MetadataOffset ?? 0))).Topic;
        Assert.All(visible.Partitions, p => Assert.True(p.Leader != 1 && !p.Isr.Contains(1)));
        foreach (var before in created.Topic.Partitions)
        {
            var after = visible.Partitions[before.Partition];
            Assert.Equal(before.PartitionEpoch + 1, after.PartitionEpoch);
            Assert.Equal(before.Leader == 1 ? before.LeaderEpoch + 1 : before.LeaderEpoch, after.LeaderEpoch);
        }
    }

    [Fact]
    public async Task A_batch_carrying_a_stale_controller_epoch_changes_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("batch-stale");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("kept", 12, 3));
        var epoch = (await setup.Client.GetClusterAsync()).Controller!.Epoch;
        var keys = Enumerable.Range(0, 12).Select(p => PartitionKeys.For(created.Topic.TopicId, p)).ToList();

        var result = await Relay(setup).ApplyAsync(new PartitionBatch(Command(setup, PartitionCommandKind.MoveLeadershipAway, epoch - 1, created.MetadataOffset), keys));

        Assert.Empty(result.Changes);
        Assert.Equal(keys, result.Failures.Select(f => f.Partition));
        Assert.All(result.Failures, f => Assert.Equal(ErrorCodes.NotController, f.ErrorCode));
        var now = (await setup.Client.DescribeTopicAsync("kept", created.MetadataOffset)).Topic;
        Assert.Equal(created.Topic.Partitions.Select(p => (p.Leader, p.LeaderEpoch, p.PartitionEpoch)), now.Partitions.Select(p => (p.Leader, p.LeaderEpoch, p.PartitionEpoch)));
    }

    [Fact]
    public async Task A_controller_epoch_taken_in_the_middle_of_a_batch_fences_every_write_after_it()
    {
        await using var setup = await MetaSetup.StartAsync("batch-fenced");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("raced", 900, 3));
        var epoch = (await setup.Client.GetClusterAsync()).Controller!.Epoch;
        var keys = Enumerable.Range(0, 900).Select(p => PartitionKeys.For(created.Topic.TopicId, p)).ToList();
        await using var database = NpgsqlDataSource.Create(TestPostgres.ConnectionString);

        // A newer controller takes the epoch row while the batch's writes are under way.
        var batch = Relay(setup).ApplyAsync(new PartitionBatch(Command(setup, PartitionCommandKind.MoveLeadershipAway, epoch, created.MetadataOffset), keys));
        await Task.Delay(TimeSpan.FromMilliseconds(50));
        await using (var bump = database.CreateCommand(
            "UPDATE grain_state SET version = version + 1 WHERE cluster_id = $1 AND grain_type = 'controller' AND state_name = 'epoch'"))
        {
            bump.Parameters.AddWithValue(setup.Cluster.ClusterId);
            Assert.Equal(1, await bump.ExecuteNonQueryAsync());
        }

        long headAtFence;
        await using (var head = database.CreateCommand("SELECT last_offset FROM metadata_log_head WHERE cluster_id = $1"))
        {
            head.Parameters.AddWithValue(setup.Cluster.ClusterId);
            headAtFence = (long)(await head.ExecuteScalarAsync())!;
        }

        var result = await batch;

        // Every partition is accounted for; whatever committed did so before the fence; everything else was refused.
        Assert.Equal(900, result.Changes.Count + result.Failures.Count);
        Assert.All(result.Failures, f => Assert.Equal(ErrorCodes.NotController, f.ErrorCode));
        Assert.All(result.Changes, c => Assert.True(c.MetadataOffset <= headAtFence, $"offset {c.MetadataOffset} is after the fence at {headAtFence}"));
        await using var later = database.CreateCommand("SELECT payload FROM metadata_log WHERE cluster_id = $1 AND log_offset > $2 AND type = 'partition'");
        later.Parameters.AddWithValue(setup.Cluster.ClusterId);
        later.Parameters.AddWithValue(headAtFence);
        await using var reader = await later.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = JsonSerializer.Deserialize<PartitionRecord>(reader.GetFieldValue<byte[]>(0), JsonSerializerOptions.Web)!;
            Assert.NotEqual(epoch, record.ControllerEpoch);
        }
    }

    [Fact]
    public async Task A_controller_whose_epoch_was_taken_writes_nothing_more_and_its_successor_finishes_the_failover()
    {
        await using var setup = await MetaSetup.StartAsync("batch-successor");
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("handed", 1500, 3));
        var epoch = (await setup.Client.GetClusterAsync()).Controller!.Epoch;
        await using var database = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        await using (var bump = database.CreateCommand(
            "UPDATE grain_state SET version = version + 1 WHERE cluster_id = $1 AND grain_type = 'controller' AND state_name = 'epoch'"))
        {
            bump.Parameters.AddWithValue(setup.Cluster.ClusterId);
            Assert.Equal(1, await bump.ExecuteNonQueryAsync());
        }

        // The running controller still believes in its epoch when broker 1 dies: every batch it sends is refused, it
        // steps down, and the next controller re-leads everything.
        await setup.Brokers[0].StopHeartbeatsAsync();
        await MetadataTests.WaitForAsync(setup.Client, "handed", t => t.Partitions.All(p => p.Leader != 1 && !p.Isr.Contains(1)), "broker 1 is gone from every partition");

        Assert.True((await setup.Client.GetClusterAsync()).Controller!.Epoch > epoch + 1);
        await using var records = database.CreateCommand("SELECT payload FROM metadata_log WHERE cluster_id = $1 AND type = 'partition'");
        records.Parameters.AddWithValue(setup.Cluster.ClusterId);
        await using var reader = await records.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = JsonSerializer.Deserialize<PartitionRecord>(reader.GetFieldValue<byte[]>(0), JsonSerializerOptions.Web)!;
            Assert.True(record.ControllerEpoch > epoch + 1, $"a partition record carries epoch {record.ControllerEpoch}, taken from controller {epoch}");
        }
    }

    private static IPartitionBatchGrain Relay(MetaSetup setup)
        => setup.Silos[0].Services.GetRequiredService<IGrainFactory>().GetGrain<IPartitionBatchGrain>("test");

    private static PartitionCommand Command(MetaSetup setup, PartitionCommandKind kind, long epoch, long offset)
        => new(kind, epoch, setup.Brokers.Select(b => b.Id).ToArray(), [], AllowUnclean: false, Broker: 1, offset);
}
