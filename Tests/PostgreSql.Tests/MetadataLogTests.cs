using System.Diagnostics;
using Npgsql;
using OrleansMeta.Runtime;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class MetadataLogTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    private static LogRecord Record(string type, string key, string json) => new(type, key, Json.Bytes(json));

    private static StateWrite Logged(string payload, long expectedVersion, params LogRecord[] records)
        => new(Json.Bytes(payload), expectedVersion, records, []);

    [Fact]
    public async Task Write_with_records_returns_the_offset_of_its_last_record_and_the_records_read_back_in_order()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        await using var log = owned.CreateLog();
        var topic = new GrainId("topic", "orders");

        var first = await owned.Storage.WriteAsync(topic, State, Logged("1", 0,
            Record("topic", "orders", "\"created\""), Record("partition", "orders-0", "\"a\""), Record("partition", "orders-1", "\"b\"")), CancellationToken.None);
        var second = await owned.Storage.WriteAsync(topic, State, Logged("2", 1,
            Record("topic", "orders", "\"config\""), Record("topic", "orders", "\"deleted\"")), CancellationToken.None);

        Assert.Equal(new WriteResult(1, 3), first);
        Assert.Equal(new WriteResult(2, 5), second);
        var records = await log.ReadAsync(0, 100, CancellationToken.None);
        Assert.Equal([1L, 2, 3, 4, 5], records.Select(r => r.Offset));
        Assert.Equal(
            ["topic/orders/\"created\"", "partition/orders-0/\"a\"", "partition/orders-1/\"b\"", "topic/orders/\"config\"", "topic/orders/\"deleted\""],
            records.Select(r => $"{r.Type}/{r.Key}/{Json.Text(r.Payload)}"));
        Assert.Equal([3L, 4], (await log.ReadAsync(2, 2, CancellationToken.None)).Select(r => r.Offset));
        Assert.Empty(await log.ReadAsync(5, 10, CancellationToken.None));
        Assert.Equal(5, await log.GetHeadAsync(CancellationToken.None));
        Assert.All(records, r => Assert.Equal(TimeSpan.Zero, r.WrittenAt.Offset));
    }

    [Fact]
    public async Task Head_of_a_cluster_that_never_appended_is_zero_and_clusters_do_not_see_each_others_records()
    {
        await using var quiet = new OwnedStorage(fixture.Database, NewClusterId());
        await using var busy = new OwnedStorage(fixture.Database, NewClusterId());
        await using var quietLog = quiet.CreateLog();
        await busy.Storage.WriteAsync(new GrainId("topic", "t"), State, Logged("1", 0, Record("topic", "t", "1")), CancellationToken.None);

        Assert.Equal(0, await quietLog.GetHeadAsync(CancellationToken.None));
        Assert.Empty(await quietLog.ReadAsync(0, 10, CancellationToken.None));
        var first = await quiet.Storage.WriteAsync(new GrainId("topic", "t"), State, Logged("1", 0, Record("topic", "t", "1")), CancellationToken.None);
        Assert.Equal(1, first.LastLogOffset);
    }

    [Fact]
    public async Task Write_whose_own_version_is_stale_appends_nothing()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        await using var log = owned.CreateLog();
        var broker = new GrainId("broker", "1");
        await owned.Storage.WriteAsync(broker, State, Logged("1", 0, Record("broker", "1", "\"registered\"")), CancellationToken.None);

        var conflict = await Assert.ThrowsAsync<InconsistentStateException>(() => owned.Storage.WriteAsync(
            broker, State, Logged("2", 0, Record("broker", "1", "\"again\"")), CancellationToken.None));
        var stale = await Assert.ThrowsAsync<InconsistentStateException>(() => owned.Storage.WriteAsync(
            broker, State, Logged("2", 7, Record("broker", "1", "\"stale\"")), CancellationToken.None));

        Assert.Equal((0L, 1L), (conflict.ExpectedVersion, conflict.StoredVersion));
        Assert.Equal((7L, 1L), (stale.ExpectedVersion, stale.StoredVersion));
        Assert.Equal(1, await log.GetHeadAsync(CancellationToken.None));
        Assert.Single(await log.ReadAsync(0, 10, CancellationToken.None));
        Assert.Equal(("1", 1L), await ReadRowAsync(owned, broker));
    }

    [Fact]
    public async Task Fenced_write_throws_with_the_found_version_and_writes_nothing_while_another_write_in_its_batch_commits()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId(), maxConcurrentBatches: 1);
        await using var log = owned.CreateLog();
        var controller = new GrainId("controller", "0");
        await owned.Storage.WriteAsync(controller, State, Json.Bytes("{\"epoch\":1}"), 0, CancellationToken.None);
        await owned.Storage.WriteAsync(controller, State, Json.Bytes("{\"epoch\":2}"), 1, CancellationToken.None);
        var fenced = new GrainId("partition", "orders-0");
        var free = new GrainId("partition", "orders-1");
        await owned.Storage.WriteAsync(fenced, State, Json.Bytes("\"before\""), 0, CancellationToken.None);
        var blocker = new GrainId("partition", "blocker");
        await owned.Storage.WriteAsync(blocker, State, Json.Bytes("0"), 0, CancellationToken.None);

        // Hold the only batch slot with a write stuck on a row lock, so that the next two writes leave together.
        Task<WriteResult> fencedWrite, freeWrite, blocked;
        await using (var connection = await owned.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using (var lockRow = new NpgsqlCommand(
                "SELECT 1 FROM grain_state WHERE cluster_id = $1 AND grain_key = 'blocker' FOR UPDATE", connection, transaction))
            {
                lockRow.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
                await lockRow.ExecuteNonQueryAsync();
            }

            blocked = owned.Storage.WriteAsync(blocker, State, StateWrite.Put(Json.Bytes("1"), 1), CancellationToken.None);
            await WaitForLockWaitAsync(owned);
            var transactionsBefore = owned.Storage.Statistics.Transactions;
            var fence = new WriteFence(controller, State, 1);
            fencedWrite = owned.Storage.WriteAsync(fenced, State,
                new StateWrite(Json.Bytes("\"after\""), 1, [Record("partition", "orders-0", "\"stale leader\"")], [fence]), CancellationToken.None);
            freeWrite = owned.Storage.WriteAsync(free, State,
                new StateWrite(Json.Bytes("\"new\""), 0, [Record("partition", "orders-1", "\"leader\"")], [new WriteFence(controller, State, 2)]), CancellationToken.None);
            await transaction.CommitAsync();
            await blocked;

            var exception = await Assert.ThrowsAsync<FencedWriteException>(() => fencedWrite);
            Assert.Equal((fence, 2L), (exception.Fence, exception.FoundVersion));
            Assert.Equal(new WriteResult(1, 1), await freeWrite);
            Assert.Equal(transactionsBefore + 2, owned.Storage.Statistics.Transactions);
        }

        Assert.Equal(("\"before\"", 1L), await ReadRowAsync(owned, fenced));
        Assert.Equal(("\"new\"", 1L), await ReadRowAsync(owned, free));
        var records = await log.ReadAsync(0, 10, CancellationToken.None);
        Assert.Equal(["orders-1"], records.Select(r => r.Key));
        Assert.Equal(1, owned.Storage.Statistics.Fenced);
    }

    [Fact]
    public async Task Fence_on_a_row_at_its_current_version_lets_the_write_and_its_records_commit()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var controller = new GrainId("controller", "0");
        await owned.Storage.WriteAsync(controller, State, Json.Bytes("{\"epoch\":1}"), 0, CancellationToken.None);

        var result = await owned.Storage.WriteAsync(new GrainId("topic", "t"), State,
            new StateWrite(Json.Bytes("1"), 0, [Record("topic", "t", "1")], [new WriteFence(controller, State, 1)]), CancellationToken.None);
        var missing = await Assert.ThrowsAsync<FencedWriteException>(() => owned.Storage.WriteAsync(new GrainId("topic", "u"), State,
            new StateWrite(Json.Bytes("1"), 0, [], [new WriteFence(new GrainId("controller", "absent"), State, 3)]), CancellationToken.None));

        Assert.Equal(new WriteResult(1, 1), result);
        Assert.Equal(0, missing.FoundVersion);
    }

    [Fact]
    public async Task Writes_without_records_never_touch_the_head_row()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var controller = new GrainId("controller", "0");
        await owned.Storage.WriteAsync(controller, State, Logged("1", 0, Record("controller", "0", "1")), CancellationToken.None);
        var before = await ReadHeadRowAsync(owned);

        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => owned.Storage.WriteAsync(
            new GrainId("group", $"g{i}"), State, Json.Bytes($"{i}"), 0, CancellationToken.None)));
        await owned.Storage.WriteAsync(new GrainId("group", "fenced"), State,
            new StateWrite(Json.Bytes("1"), 0, [], [new WriteFence(controller, State, 1)]), CancellationToken.None);
        await Assert.ThrowsAsync<InconsistentStateException>(() => owned.Storage.WriteAsync(
            new GrainId("group", "g0"), State, Logged("x", 9, Record("group", "g0", "1")), CancellationToken.None));
        await Assert.ThrowsAsync<FencedWriteException>(() => owned.Storage.WriteAsync(new GrainId("group", "g1"), State,
            new StateWrite(Json.Bytes("1"), 1, [Record("group", "g1", "1")], [new WriteFence(controller, State, 5)]), CancellationToken.None));

        // xmin changes with every update of the row, even one that writes the same value.
        Assert.Equal(before, await ReadHeadRowAsync(owned));
    }

    [Fact]
    public async Task Wait_for_append_returns_at_once_when_records_after_the_offset_exist()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        await using var log = owned.CreateLog();
        await owned.Storage.WriteAsync(new GrainId("topic", "t"), State, Logged("1", 0, Record("topic", "t", "1")), CancellationToken.None);

        await log.WaitForAppendAsync(0, TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(25));
    }

    [Fact]
    public async Task Wait_for_append_wakes_when_another_silo_commits_a_record()
    {
        var clusterId = NewClusterId();
        await using var reader = new OwnedStorage(fixture.Database, clusterId);
        await using var writer = new OwnedStorage(fixture.Database, clusterId);
        await using var log = reader.CreateLog();
        var topic = new GrainId("topic", "t");
        await writer.Storage.WriteAsync(topic, State, Logged("1", 0, Record("topic", "t", "1")), CancellationToken.None);
        await log.WaitForAppendAsync(0, TimeSpan.FromSeconds(30), CancellationToken.None); // The listener is up and knows head 1.

        var maxWait = TimeSpan.FromSeconds(30);
        var stopwatch = Stopwatch.StartNew();
        var wait = log.WaitForAppendAsync(1, maxWait, CancellationToken.None);
        Assert.False(wait.IsCompleted);
        await writer.Storage.WriteAsync(topic, State, Logged("2", 1, Record("topic", "t", "2")), CancellationToken.None);
        await wait;

        Assert.True(stopwatch.Elapsed < maxWait, $"the wait ran to its maxWait ({stopwatch.Elapsed})");
        Assert.Equal([2L], (await log.ReadAsync(1, 10, CancellationToken.None)).Select(r => r.Offset));
    }

    internal static async Task<(string Payload, long Version)> ReadRowAsync(OwnedStorage owned, GrainId grain)
    {
        var row = await owned.Storage.ReadAsync(grain, State, CancellationToken.None);
        return (Json.Text(row!.Payload), row.Version);
    }

    private static async Task<(string Xmin, long LastOffset)> ReadHeadRowAsync(OwnedStorage owned)
    {
        await using var command = owned.DataSource.CreateCommand("SELECT xmin::text, last_offset FROM metadata_log_head WHERE cluster_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetString(0), reader.GetInt64(1));
    }

    private static async Task WaitForLockWaitAsync(OwnedStorage owned)
    {
        // Polls a condition, not a clock: the batch is in flight once its backend waits for the row lock.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            await using var command = owned.DataSource.CreateCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
            if ((long)(await command.ExecuteScalarAsync(timeout.Token))! > 0)
            {
                return;
            }

            await Task.Yield();
        }
    }
}
