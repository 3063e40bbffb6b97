using System.Globalization;
using Npgsql;
using OrleansMeta.Runtime;
using Xunit.Abstractions;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class ReadBatchingTests(MigratedDatabaseFixture fixture, ITestOutputHelper output) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    private static string Payload(int i) => $$"""{"n":{{i}}}""";

    [Fact]
    public async Task Two_thousand_concurrent_reads_each_get_their_own_row_in_far_fewer_batches()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grains = Enumerable.Range(0, 2000).Select(i => new GrainId("partition", $"p{i}")).ToArray();
        await Task.WhenAll(grains.Where((_, i) => i % 2 == 0).Select(
            grain => storage.WriteAsync(grain, State, Json.Bytes(Payload(int.Parse(grain.Key[1..], CultureInfo.InvariantCulture))), 0, CancellationToken.None)));

        // What a failover does: every partition grain activates at once and reads its state.
        var rows = await Task.WhenAll(grains.Select(grain => storage.ReadAsync(grain, State, CancellationToken.None)));

        for (var i = 0; i < grains.Length; i++)
        {
            if (i % 2 == 0)
            {
                Assert.Equal((Payload(i), 1L), (Json.Text(rows[i]!.Payload), rows[i]!.Version));
            }
            else
            {
                Assert.Null(rows[i]);
            }
        }

        var stats = storage.Statistics;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{stats.Reads} reads in {stats.ReadBatches} read batches ({(double)stats.Reads / stats.ReadBatches:F1} reads per batch)"));
        Assert.Equal(2000, stats.Reads);
        Assert.True(stats.ReadBatches < stats.Reads / 4, $"{stats.ReadBatches} read batches for {stats.Reads} reads");
    }

    [Fact]
    public async Task Duplicate_reads_in_one_batch_each_get_the_row()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId(), maxConcurrentReadBatches: 1);
        var storage = owned.Storage;
        var grains = Enumerable.Range(0, 10).Select(i => new GrainId("topic", $"t{i}")).ToArray();
        await Task.WhenAll(grains.Select((grain, i) => storage.WriteAsync(grain, State, Json.Bytes(Payload(i)), 0, CancellationToken.None)));
        var missing = new GrainId("topic", "missing");

        // The only read batch allowed is held in flight, so the whole burst queues and leaves as one batch.
        List<Task<StoredGrainState?>> burst;
        await using (var hold = await GrainStateLock.TakeAsync(fixture.Database))
        {
            var blocker = storage.ReadAsync(grains[0], State, CancellationToken.None);
            await hold.WaitForBlockedStatementAsync();
            burst = [.. Enumerable.Range(0, 5).SelectMany(_ => grains.Append(missing)).Select(grain => storage.ReadAsync(grain, State, CancellationToken.None))];
            await hold.ReleaseAsync();
            Assert.Equal((Payload(0), 1L), (Json.Text((await blocker)!.Payload), (await blocker)!.Version));
        }

        var rows = await Task.WhenAll(burst);
        for (var i = 0; i < rows.Length; i++)
        {
            var index = i % (grains.Length + 1);
            if (index == grains.Length)
            {
                Assert.Null(rows[i]);
                continue;
            }

            Assert.Equal((Payload(index), 1L), (Json.Text(rows[i]!.Payload), rows[i]!.Version));
            if (i >= grains.Length + 1)
            {
                // Each caller owns its payload array, even when it shares a row with another caller.
                Assert.NotSame(rows[index]!.Payload, rows[i]!.Payload);
            }
        }

        Assert.Equal((2L, 1L + rows.Length), (storage.Statistics.ReadBatches, storage.Statistics.Reads));
    }

    [Fact]
    public async Task Read_after_an_acknowledged_write_sees_that_write()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;

        // Many grains at once, so reads share batches with each other while writes of the same rows are in flight.
        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            var grain = new GrainId("group", $"g{i}");
            for (var version = 0L; version < 3; version++)
            {
                var payload = $"{i}:{version}";
                Assert.Equal(version + 1, await storage.WriteAsync(grain, State, Json.Bytes(payload), version, CancellationToken.None));
                var row = await storage.ReadAsync(grain, State, CancellationToken.None);
                Assert.Equal((payload, version + 1), (Json.Text(row!.Payload), row.Version));
            }
        }));
    }

    [Fact]
    public async Task Cancelled_reads_do_not_disturb_the_others()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId(), maxConcurrentReadBatches: 1);
        var storage = owned.Storage;
        var grains = Enumerable.Range(0, 40).Select(i => new GrainId("broker", $"b{i}")).ToArray();
        await Task.WhenAll(grains.Where((_, i) => i % 2 == 0).Select(
            grain => storage.WriteAsync(grain, State, Json.Bytes(grain.Key), 0, CancellationToken.None)));
        using var sentCancellation = new CancellationTokenSource();
        using var queuedCancellation = new CancellationTokenSource();

        Task<StoredGrainState?[]> others;
        await using (var hold = await GrainStateLock.TakeAsync(fixture.Database))
        {
            var sent = storage.ReadAsync(grains[0], State, sentCancellation.Token);
            await hold.WaitForBlockedStatementAsync();
            var queued = storage.ReadAsync(grains[0], State, queuedCancellation.Token);
            others = Task.WhenAll(grains.Select(grain => storage.ReadAsync(grain, State, CancellationToken.None)));

            // The sent read's caller stops waiting although its batch is still held up in the database.
            await sentCancellation.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sent);
            await queuedCancellation.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
            await hold.ReleaseAsync();
        }

        var rows = await others;
        for (var i = 0; i < grains.Length; i++)
        {
            if (i % 2 == 0)
            {
                Assert.Equal((grains[i].Key, 1L), (Json.Text(rows[i]!.Payload), rows[i]!.Version));
            }
            else
            {
                Assert.Null(rows[i]);
            }
        }

        // The cancelled queued read never left: the sent one's batch and one batch of the others.
        Assert.Equal((2L, 1L + grains.Length), (storage.Statistics.ReadBatches, storage.Statistics.Reads));
    }

    [Fact]
    public async Task A_single_read_on_an_idle_storage_is_sent_without_waiting_for_company()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("controller", "0");
        await owned.Storage.WriteAsync(grain, State, Json.Bytes("\"only\""), 0, CancellationToken.None);

        // Far below MaxReadBatchSize: if reads waited for a batch to fill, this would never return.
        var row = await owned.Storage.ReadAsync(grain, State, CancellationToken.None);

        Assert.Equal(("\"only\"", 1L), (Json.Text(row!.Payload), row.Version));
        Assert.Equal((1L, 1L), (owned.Storage.Statistics.ReadBatches, owned.Storage.Statistics.Reads));
    }

    [Fact]
    public async Task When_a_read_batch_fails_every_read_in_it_gets_the_error()
    {
        // A database without the schema: the batch statement itself fails.
        await using var bare = await TestDatabase.CreateAsync(migrate: false);
        await using var owned = new OwnedStorage(bare, NewClusterId());

        var reads = Enumerable.Range(0, 20)
            .Select(i => owned.Storage.ReadAsync(new GrainId("topic", $"t{i}"), State, CancellationToken.None))
            .ToArray();

        foreach (var read in reads)
        {
            var error = await Assert.ThrowsAsync<PostgresException>(() => read);
            Assert.Equal(PostgresErrorCodes.UndefinedTable, error.SqlState);
        }
    }
}

/// <summary>
/// Holds <c>grain_state</c> in ACCESS EXCLUSIVE mode inside an open transaction, so every statement on it waits: a test
/// keeps a batch in flight for exactly as long as it needs, without sleeping.
/// </summary>
internal sealed class GrainStateLock : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;

    private GrainStateLock(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        _connection = connection;
        _transaction = transaction;
    }

    public static async Task<GrainStateLock> TakeAsync(TestDatabase database)
    {
        var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("LOCK TABLE grain_state IN ACCESS EXCLUSIVE MODE", connection, transaction);
        await command.ExecuteNonQueryAsync();
        return new GrainStateLock(connection, transaction);
    }

    /// <summary>Returns once another session's statement is waiting for this lock (i.e. a batch is in flight).</summary>
    public async Task WaitForBlockedStatementAsync()
    {
        const string Sql =
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_locks
                WHERE NOT granted AND relation = 'grain_state'::regclass
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
            """;
        await Eventually.Until(async () =>
        {
            await using var command = new NpgsqlCommand(Sql, _connection, _transaction);
            return (bool)(await command.ExecuteScalarAsync())!;
        }, "another session's statement waits for the grain_state lock");
    }

    public Task ReleaseAsync() => _transaction.CommitAsync();

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
