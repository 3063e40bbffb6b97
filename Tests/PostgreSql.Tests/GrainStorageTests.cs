using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class GrainStorageTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Read_of_a_grain_never_written_returns_null()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());

        Assert.Null(await owned.Storage.ReadAsync(new GrainId("topic", "never"), State, CancellationToken.None));
    }

    [Fact]
    public async Task Write_read_and_clear_round_trip_with_versions_counting_up()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grain = new GrainId("topic", "orders");

        Assert.Equal(1, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":1}"""), 0, CancellationToken.None));
        var first = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"partitions":1}""", 1L), (Json.Text(first!.Payload), first.Version));

        Assert.Equal(2, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":2}"""), 1, CancellationToken.None));
        Assert.Equal(3, await storage.ClearAsync(grain, State, 2, CancellationToken.None));
        var cleared = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(((byte[]?)null, 3L), (cleared!.Payload, cleared.Version));

        Assert.Equal(4, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":3}"""), 3, CancellationToken.None));
        var last = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"partitions":3}""", 4L), (Json.Text(last!.Payload), last.Version));
    }

    [Fact]
    public async Task Clear_of_a_grain_never_written_creates_an_empty_row_at_version_1()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("broker", "1");

        Assert.Equal(1, await owned.Storage.ClearAsync(grain, State, 0, CancellationToken.None));

        var row = await owned.Storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(((byte[]?)null, 1L), (row!.Payload, row.Version));
    }

    [Fact]
    public async Task Write_with_stale_version_is_rejected_and_changes_nothing()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grain = new GrainId("partition", "orders-0");
        await storage.WriteAsync(grain, State, Json.Bytes("""{"leader":1}"""), 0, CancellationToken.None);
        await storage.WriteAsync(grain, State, Json.Bytes("""{"leader":2}"""), 1, CancellationToken.None);

        var stale = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteAsync(grain, State, Json.Bytes("""{"leader":3}"""), 1, CancellationToken.None));
        var recreate = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteAsync(grain, State, Json.Bytes("""{"leader":4}"""), 0, CancellationToken.None));
        var staleClear = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.ClearAsync(grain, State, 7, CancellationToken.None));

        Assert.Equal((1L, 2L), (stale.ExpectedVersion, stale.StoredVersion));
        Assert.Equal((0L, 2L), (recreate.ExpectedVersion, recreate.StoredVersion));
        Assert.Equal((7L, 2L), (staleClear.ExpectedVersion, staleClear.StoredVersion));
        var row = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"leader":2}""", 2L), (Json.Text(row!.Payload), row.Version));
        Assert.Equal(3, storage.Statistics.Conflicts);
    }

    [Fact]
    public async Task Payload_bytes_come_back_exactly_as_written()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("consumer-group", "billing");
        // Key order, whitespace and number spelling all matter to someone; jsonb would rewrite each of them.
        var payload = Json.Bytes("""{ "id": 1, "$type": "group", "name": "fakturering \u00e9\u6f22", "lag": 1.50, "id": 2 }""");

        await owned.Storage.WriteAsync(grain, State, payload, 0, CancellationToken.None);

        Assert.Equal(payload, (await owned.Storage.ReadAsync(grain, State, CancellationToken.None))!.Payload);
    }

    [Fact]
    public async Task State_of_one_cluster_is_invisible_to_another_sharing_the_database()
    {
        await using var first = new OwnedStorage(fixture.Database, NewClusterId());
        await using var second = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("topic", "shared-name");

        await first.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None);

        Assert.Null(await second.Storage.ReadAsync(grain, State, CancellationToken.None));
        Assert.Equal(1, await second.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task Write_cancelled_before_it_is_sent_is_not_written()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("topic", "cancelled");

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => owned.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, new CancellationToken(canceled: true)));

        Assert.Null(await owned.Storage.ReadAsync(grain, State, CancellationToken.None));
        Assert.Equal(1, await owned.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task State_survives_disposing_the_storage_and_its_data_source()
    {
        var clusterId = NewClusterId();
        var grain = new GrainId("broker", "7");
        await using (var before = new OwnedStorage(fixture.Database, clusterId))
        {
            await before.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":1}"""), 0, CancellationToken.None);
            await before.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":2}"""), 1, CancellationToken.None);
        }

        await using var after = new OwnedStorage(fixture.Database, clusterId);
        var row = await after.Storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"epoch":2}""", 2L), (Json.Text(row!.Payload), row.Version));
        Assert.Equal(3, await after.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":3}"""), 2, CancellationToken.None));
        await Assert.ThrowsAsync<InconsistentStateException>(
            () => after.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":9}"""), 1, CancellationToken.None));
    }

    [Fact]
    public async Task Writes_accepted_before_dispose_are_flushed_and_later_writes_are_refused()
    {
        var clusterId = NewClusterId();
        var owned = new OwnedStorage(fixture.Database, clusterId);
        var writes = Enumerable.Range(0, 100)
            .Select(i => owned.Storage.WriteAsync(new GrainId("topic", $"t{i}"), State, Json.Bytes("{}"), 0, CancellationToken.None))
            .ToArray();

        await owned.DisposeAsync();

        Assert.All(await Task.WhenAll(writes), version => Assert.Equal(1, version));
        await Assert.ThrowsAsync<ObjectDisposedException>(
            () => owned.Storage.WriteAsync(new GrainId("topic", "late"), State, Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task Batch_writes_find_their_rows_by_key_when_the_statistics_predate_the_cluster()
    {
        // A new cluster's rows are missing from the table's statistics until autovacuum's next ANALYZE, which a
        // failover's first partition writes easily outrun. Planned on such statistics, a batch's update hashed its input
        // against every row of the cluster, and each batch cost more than the one before.
        const string Cluster = "plans";
        await using var database = await TestDatabase.CreateAsync(migrate: true);
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await PlanProbe.ExecuteAsync(connection, "ALTER TABLE grain_state SET (autovacuum_enabled = false)");
        var small = await PlanProbe.PrepareAsync(connection, "small_write", "text, text[], text[], text[], bytea[], bigint[], text, bigint",
            PostgresGrainStorage.WriteSql, PostgresGrainStorage.BatchGenericPlanSql);
        await small.RunAndRollBackAsync($"'{Cluster}', '{{partition}}', '{{p1}}', '{{partition}}', '{{NULL}}', '{{1}}', NULL, NULL");
        await PlanProbe.ExecuteAsync(connection,
            """
            INSERT INTO grain_state (cluster_id, grain_type, grain_key, state_name, version, payload)
            SELECT 'older', 'partition', 'p' || n, 'partition', 1, NULL FROM generate_series(1, 5000) AS n
            """);
        await PlanProbe.ExecuteAsync(connection, "ANALYZE grain_state");
        await PlanProbe.ExecuteAsync(connection,
            $"""
            INSERT INTO grain_state (cluster_id, grain_type, grain_key, state_name, version, payload)
            SELECT '{Cluster}', 'partition', 'p' || n, 'partition', 1, NULL FROM generate_series(1, 50000) AS n
            """);

        static string Writes(int count) =>
            $"'{Cluster}', {PlanProbe.Array(Enumerable.Repeat("partition", count))}, {PlanProbe.Array(Enumerable.Range(0, count).Select(i => "p" + (1 + i * 97 % 50000)))}, " +
            $"{PlanProbe.Array(Enumerable.Repeat("partition", count))}, {PlanProbe.Array(Enumerable.Repeat("NULL", count))}, {PlanProbe.Array(Enumerable.Repeat(1, count))}";
        string[] key = ["cluster_id", "grain_type", "grain_key", "state_name"];

        // A large batch of fenced writes with records (a failover's): a custom plan for its own rows. Each write is
        // fenced by the controller's row and appends one record.
        var large = await PlanProbe.PrepareAsync(connection, "large_write",
            "text, text[], text[], text[], bytea[], bigint[], int[], bigint[], text[], text[], text[], bigint[], bigint[], text[], text[], bytea[], text, bigint",
            PostgresGrainStorage.FencedLoggedWriteSql, PostgresGrainStorage.BatchAsynchronousCommitSql);
        const int Count = 512;
        var writes = Enumerable.Range(1, Count).ToList();
        var arguments = Writes(Count) + $", {PlanProbe.Array(writes)}, {PlanProbe.Array(writes)}, " +
            $"{PlanProbe.Array(Enumerable.Repeat("controller", Count))}, {PlanProbe.Array(Enumerable.Repeat("controller", Count))}, " +
            $"{PlanProbe.Array(Enumerable.Repeat("epoch", Count))}, {PlanProbe.Array(Enumerable.Repeat(1, Count))}, {PlanProbe.Array(writes)}, " +
            $"{PlanProbe.Array(Enumerable.Repeat("partition", Count))}, {PlanProbe.Array(Enumerable.Repeat("k", Count))}, " +
            $"{PlanProbe.Array(Enumerable.Repeat("NULL", Count))}, NULL, NULL";
        PlanProbe.AssertKeyLookups(await large.ExplainAsync(arguments), "grain_state", key);

        // The same batch of updates only, as the storage runs it at any size: the generic plan.
        var generic = await PlanProbe.PrepareAsync(connection, "large_generic_write",
            "text, text[], text[], text[], bytea[], bigint[], int[], bigint[], text[], text[], text[], bigint[], bigint[], text[], text[], bytea[], text, bigint",
            PostgresGrainStorage.FencedLoggedWriteSql, PostgresGrainStorage.BatchAsynchronousCommitGenericPlanSql);
        PlanProbe.AssertKeyLookups(await generic.ExplainAsync(arguments), "grain_state", key);

        // A small batch without records: a prepared statement's generic plan, made by its first run, when the
        // table was empty.
        PlanProbe.AssertKeyLookups(await small.ExplainAsync(Writes(32) + ", NULL, NULL"), "grain_state", key);
    }
}
