using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>
/// The log's append path with an append held open: readers never pass it, later appends wait for it and then commit
/// after it in one total order, writes without records do not wait at all, and the records that queue up meanwhile in
/// one silo leave together in its next batch (group commit).
/// </summary>
public sealed class MetadataLogAppendTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    private static LogRecord Record(string key, string json) => new("partition", key, Json.Bytes(json));

    [Fact]
    public async Task A_reader_never_passes_an_append_in_flight_and_appends_that_queue_behind_it_share_one_batch_per_silo()
    {
        var clusterId = NewClusterId();
        // One appending batch in flight per silo, so that which appends share a batch does not depend on timing.
        await using var first = new OwnedStorage(fixture.Database, clusterId, maxAppendingBatches: 1);
        await using var second = new OwnedStorage(fixture.Database, clusterId, maxAppendingBatches: 1);
        await using var log = first.CreateLog();
        await first.Storage.WriteAsync(new GrainId("partition", "seed"), State,
            new StateWrite(Json.Bytes("0"), 0, [Record("seed", "0")], []), CancellationToken.None);

        // An append in flight, exactly as the batch statement makes one: it has taken offset 2 under the head row's
        // lock and inserted its record, and has not committed.
        await using var held = await first.DataSource.OpenConnectionAsync();
        await using var transaction = await held.BeginTransactionAsync();
        await using (var append = new NpgsqlCommand(
            "WITH head AS (UPDATE metadata_log_head SET last_offset = last_offset + 1 WHERE cluster_id = $1 RETURNING last_offset) " +
            "INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload) " +
            "SELECT $1, last_offset, 'partition', 'held', convert_to('\"held\"', 'UTF8') FROM head RETURNING log_offset",
            held, transaction))
        {
            append.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
            Assert.Equal(2L, await append.ExecuteScalarAsync());
        }

        // Both silos append while it is open: one write first, then, while that one's batch waits, ten more each.
        var firstAppends = first.Storage.Statistics.AppendingTransactions;
        var secondAppends = second.Storage.Statistics.AppendingTransactions;
        var writes = new List<(string Key, Task<WriteResult> Write)> { ("a0", Append(first, "a0")), ("b0", Append(second, "b0")) };
        await Eventually.Until(async () => await CountWaitingForTheHeadAsync(first) == 2, "both silos' first batches wait for the held append");
        for (var i = 1; i <= 10; i++)
        {
            writes.Add(($"a{i}", Append(first, $"a{i}")));
            writes.Add(($"b{i}", Append(second, $"b{i}")));
        }

        // Writes without records do not wait for the log.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => first.Storage.WriteAsync(
            new GrainId("group", $"g{i}"), State, Json.Bytes("1"), 0, CancellationToken.None))).WaitAsync(TimeSpan.FromSeconds(30));

        // Readers stop below the open append: the head and the records they see end at offset 1, however long they wait.
        await Task.Delay(300);
        Assert.Equal(1, await log.GetHeadAsync(CancellationToken.None));
        Assert.Equal([1L], (await log.ReadAsync(0, 100, CancellationToken.None)).Select(r => r.Offset));
        Assert.All(writes, write => Assert.False(write.Write.IsCompleted));

        await transaction.CommitAsync();
        await Task.WhenAll(writes.Select(w => w.Write)).WaitAsync(TimeSpan.FromSeconds(30));

        // One total order, no gap, the held record at the offset it took, every write's offset its own record's.
        var records = await log.ReadAsync(0, 100, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, 24).Select(o => (long)o), records.Select(r => r.Offset));
        Assert.Equal("held", records[1].Key);
        foreach (var (key, write) in writes)
        {
            Assert.Equal(key, records[(int)(await write).LastLogOffset!.Value - 1].Key);
        }

        Assert.Equal(24, await log.GetHeadAsync(CancellationToken.None));

        // Group commit: in each silo the ten appends that queued behind its first batch left together in one more.
        Assert.Equal(2, first.Storage.Statistics.AppendingTransactions - firstAppends);
        Assert.Equal(2, second.Storage.Statistics.AppendingTransactions - secondAppends);
    }

    [Fact]
    public async Task Appends_that_commit_while_a_flush_is_in_flight_share_the_next_one_and_none_is_acknowledged_or_read_before_its_flush()
    {
        var clusterId = NewClusterId();
        await using var silo = new OwnedStorage(fixture.Database, clusterId, maxAppendingBatches: 1);
        await using var log = silo.CreateLog();
        await Append(silo, "seed");
        var flushes = silo.Storage.Statistics.Flushes;

        // While this lock is held no durability transaction can record a frontier: the flush in flight waits (and so
        // does the once-a-second keeper, which would otherwise make the records readable).
        await using var held = await HoldDurabilityAsync(silo);

        // One append commits and its flush waits; ten more commit meanwhile (a batch gives its slot back at its commit).
        var first = Append(silo, "a0");
        await Eventually.Until(async () => await CountRecordsAsync(silo) == 2, "the first append commits");
        var later = Enumerable.Range(1, 10).Select(i => Append(silo, $"a{i}")).ToList();
        await Eventually.Until(async () => await CountRecordsAsync(silo) == 12, "the later appends commit while the first flush waits");
        await Task.Delay(1000);

        // Committed is not durable: nothing is acknowledged and readers stop at the seed.
        Assert.False(first.IsCompleted);
        Assert.All(later, write => Assert.False(write.IsCompleted));
        Assert.Equal(1, await log.GetHeadAsync(CancellationToken.None));
        Assert.Equal(["seed"], (await log.ReadAsync(0, 100, CancellationToken.None)).Select(r => r.Key));

        await held.CommitAsync();
        var results = await Task.WhenAll(later.Prepend(first)).WaitAsync(TimeSpan.FromSeconds(30));
        var records = await log.ReadAsync(0, 100, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, 12).Select(o => (long)o), records.Select(r => r.Offset));
        Assert.Equal(results.Select(r => r.LastLogOffset!.Value).Order(), Enumerable.Range(2, 11).Select(o => (long)o));

        // The first flush covered the first append; the ten that committed while it waited shared the next one.
        Assert.Equal(2, silo.Storage.Statistics.Flushes - flushes);
    }

    [Fact]
    public async Task When_the_shared_flush_fails_its_writes_fail_as_unknown_outcomes_and_their_records_become_readable_with_a_later_flush()
    {
        var clusterId = NewClusterId();
        await using var silo = new OwnedStorage(fixture.Database, clusterId, maxAppendingBatches: 1);
        await using var log = silo.CreateLog();
        await Append(silo, "seed");

        // The flush waits on this lock; then its backend is terminated, as when the database connection is lost mid-flush.
        await using var held = await HoldDurabilityAsync(silo);

        var writes = new[] { Append(silo, "a"), Append(silo, "b") };
        await Eventually.Until(async () => await CountRecordsAsync(silo) == 3, "both appends commit");
        await Eventually.Until(async () => await TerminateWaitingFlushesAsync(silo) > 0, "the flush waits for the lock and is cut off");

        // They committed, but nothing said so durably: each write fails with an unknown outcome (its grain reloads).
        foreach (var write in writes)
        {
            var failure = await Assert.ThrowsAnyAsync<NpgsqlException>(() => write.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("unknown outcome", failure.Message, StringComparison.Ordinal);
        }

        Assert.Equal(1, await log.GetHeadAsync(CancellationToken.None));
        await held.CommitAsync();

        // The next flush covers them: the log holds them, in order, before the next append.
        var next = await Append(silo, "c");
        Assert.Equal(4, next.LastLogOffset);
        var records = await log.ReadAsync(0, 100, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, 4).Select(o => (long)o), records.Select(r => r.Offset));
        Assert.Equal(["seed", "a", "b", "c"], records.Select(r => r.Key));
    }

    [Fact]
    public async Task An_append_whose_statement_fails_leaves_its_pooled_connection_clean_for_the_next_batch()
    {
        var clusterId = NewClusterId();
        await using var owned = new OwnedStorage(fixture.Database, clusterId, maxConcurrentBatches: 1, maxConnections: 1);
        await using var log = owned.CreateLog();

        // PostgreSQL refuses a NUL character in text: the batch statement fails inside its explicit transaction.
        var failing = owned.Storage.WriteAsync(new GrainId("partition", "bad\0key"), State,
            new StateWrite(Json.Bytes("1"), 0, [Record("bad", "1")], []), CancellationToken.None);
        await Assert.ThrowsAnyAsync<Exception>(() => failing);

        // The only connection of the pool goes back without an open transaction: the next append commits and is read.
        var next = await owned.Storage.WriteAsync(new GrainId("partition", "good"), State,
            new StateWrite(Json.Bytes("1"), 0, [Record("good", "1")], []), CancellationToken.None);
        Assert.Equal(1, next.LastLogOffset);
        Assert.Equal(["good"], (await log.ReadAsync(0, 10, CancellationToken.None)).Select(r => r.Key));
    }

    /// <summary>Statements of this test's database waiting for a lock: only the head row's is held here.</summary>
    [Fact]
    public async Task A_committed_append_is_read_only_once_durable_and_a_writer_that_died_before_making_it_durable_is_covered()
    {
        var clusterId = NewClusterId();
        await using var dataSource = fixture.Database.CreateDataSource();
        await using var log = new PostgresMetadataLog(dataSource, Options.Create(new PostgresStorageOptions { ClusterId = clusterId }));

        // A writer that committed its append (asynchronously, as batches with records do) and died before its
        // durability transaction: the record is committed, but no reader may rely on it yet.
        await using (var append = dataSource.CreateCommand(
            "WITH head AS (INSERT INTO metadata_log_head (cluster_id, last_offset) VALUES ($1, 1) RETURNING last_offset) " +
            "INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload) " +
            "SELECT $1, last_offset, 'partition', 'orphan', convert_to('1', 'UTF8') FROM head"))
        {
            append.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
            await append.ExecuteNonQueryAsync();
        }

        await Task.Delay(1500);
        Assert.Equal(0, await log.GetHeadAsync(CancellationToken.None));
        Assert.Empty(await log.ReadAsync(0, 10, CancellationToken.None));

        // Any live storage of the cluster makes it durable within about a second, and readers are woken.
        var woken = log.WaitForAppendAsync(0, TimeSpan.FromSeconds(30), CancellationToken.None);
        await using var survivor = new OwnedStorage(fixture.Database, clusterId);
        await woken.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await log.GetHeadAsync(CancellationToken.None));
        Assert.Equal(["orphan"], (await log.ReadAsync(0, 10, CancellationToken.None)).Select(r => r.Key));
    }

    private static Task<WriteResult> Append(OwnedStorage silo, string key)
        => silo.Storage.WriteAsync(new GrainId("partition", key), State, new StateWrite(Json.Bytes("1"), 0, [Record(key, $"\"{key}\"")], []), CancellationToken.None);

    /// <summary>
    /// A transaction that holds <c>metadata_log_durable</c> locked: no durability transaction can record a frontier
    /// until it ends (committing it lets them go on).
    /// </summary>
    private static async Task<NpgsqlTransaction> HoldDurabilityAsync(OwnedStorage silo)
    {
        var connection = await silo.DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE metadata_log_durable IN EXCLUSIVE MODE", connection, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        return transaction;
    }

    /// <summary>Ends every backend of this test's database that waits for a lock in a durability transaction; returns how many.</summary>
    private static async Task<long> TerminateWaitingFlushesAsync(OwnedStorage silo)
    {
        await using var command = silo.DataSource.CreateCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() " +
            "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO metadata_log_durable%' AND pid <> pg_backend_pid()");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Records committed to the cluster's log, durable or not.</summary>
    private static async Task<long> CountRecordsAsync(OwnedStorage silo)
    {
        await using var command = silo.DataSource.CreateCommand("SELECT count(*) FROM metadata_log WHERE cluster_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = silo.ClusterId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<long> CountWaitingForTheHeadAsync(OwnedStorage silo)
    {
        await using var command = silo.DataSource.CreateCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
