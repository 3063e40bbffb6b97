using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>
/// The committed-offset store on a real PostgreSQL: round trips, batching across groups, the later of two commits of a
/// partition winning, the writer fence, input checks, expiry candidates, and the migration onto an existing schema.
/// Each test uses its own cluster id, so tests share the fixture's database without seeing each other's rows.
/// </summary>
public sealed class OffsetStoreTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private static readonly Guid Orders = Guid.Parse("0b8f5a3e-8d7e-4b0c-9f59-3c1b2a4d5e60");
    private static readonly Guid Payments = Guid.Parse("7c2d1e0f-5a4b-4c3d-8e9f-a0b1c2d3e4f5");

    [Fact]
    public async Task Commit_read_overwrite_and_delete_round_trip()
    {
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        await AssertRoundTripAsync(owned.Store);
    }

    [Fact]
    public async Task The_in_memory_store_keeps_the_same_contract()
        => await AssertRoundTripAsync(new InMemoryOffsetStore());

    [Fact]
    public async Task Many_groups_committing_at_once_share_few_transactions_and_all_are_readable()
    {
        const int Groups = 300;
        const int Partitions = 5;
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());

        // Every call is issued before any completes, as many group grains committing at once would.
        var calls = new List<Task>();
        for (var partition = 0; partition < Partitions; partition++)
        {
            for (var group = 0; group < Groups; group++)
            {
                calls.Add(owned.Store.CommitAsync($"g{group}", [Commit(Orders, partition, 1000 * group + partition)], CancellationToken.None));
            }
        }

        await Task.WhenAll(calls);

        var statistics = owned.Store.Statistics;
        Assert.Equal(Groups * Partitions, statistics.Calls);
        Assert.Equal(Groups * Partitions, statistics.Rows);
        Assert.True(statistics.Batches <= 40, $"{statistics.Calls} calls took {statistics.Batches} transactions; they should share a few.");
        Assert.Equal(statistics.Batches, await CountTransactionsOfAsync(owned));
        for (var group = 0; group < Groups; group++)
        {
            var offsets = await owned.Store.ReadAsync($"g{group}", CancellationToken.None);
            Assert.Equal(Enumerable.Range(0, Partitions).Select(p => (long)(1000 * group + p)), offsets.Select(o => o.Offset));
        }
    }

    [Fact]
    public async Task A_partition_committed_twice_in_one_batch_keeps_the_later_commit()
    {
        var clusterId = NewCluster();
        var silo = new SiloAddress("http://127.0.0.1:11", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");
        await using var owned = new OwnedOffsetStore(fixture.Database, clusterId, maxConcurrentBatches: 1, writer: new FixedWriter(silo));

        // A peer holds the writer's membership row, so the first batch waits on it and everything after it queues up
        // for the one next batch.
        await using var peer = new NpgsqlConnection(fixture.Database.ConnectionString);
        await peer.OpenAsync();
        await using var transaction = await peer.BeginTransactionAsync();
        await MembershipRows.ExecuteAsync(peer, transaction, "SELECT 1 FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 FOR UPDATE", clusterId, silo);
        var first = owned.Store.CommitAsync("blocker", [Commit(Orders, 0, 1)], CancellationToken.None);
        await MembershipRows.WaitUntilABackendWaitsOnALockAsync(fixture.Database, "the batch waits on the membership row lock");

        var earlier = owned.Store.CommitAsync("g", [Commit(Orders, 0, 10, "earlier"), Commit(Orders, 1, 11)], CancellationToken.None);
        var later = owned.Store.CommitAsync("g", [Commit(Orders, 0, 20, "later"), Commit(Orders, 2, 5), Commit(Orders, 2, 22, "later in the call")], CancellationToken.None);
        await transaction.RollbackAsync();
        await Task.WhenAll(first, earlier, later);

        Assert.Equal((2L, 3L, 4L), (owned.Store.Statistics.Batches, owned.Store.Statistics.Calls, owned.Store.Statistics.Rows));
        var offsets = await owned.Store.ReadAsync("g", CancellationToken.None);
        Assert.Equal(
            [(0, 20L, "later"), (1, 11L, null), (2, 22L, "later in the call")],
            offsets.Select(o => (o.Partition, o.Offset, o.Metadata)));
    }

    [Fact]
    public async Task Commits_of_a_silo_declared_dead_write_nothing_and_are_refused()
    {
        var clusterId = NewCluster();
        var silo = new SiloAddress("http://127.0.0.1:12", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");
        await using var owned = new OwnedOffsetStore(fixture.Database, clusterId, writer: new FixedWriter(silo));
        await owned.Store.CommitAsync("g0", [Commit(Orders, 0, 5)], CancellationToken.None);

        await MembershipRows.SetStatusAsync(fixture.Database, clusterId, silo, "Dead");

        var refused = Enumerable.Range(0, 20)
            .Select(group => owned.Store.CommitAsync($"g{group}", [Commit(Orders, 0, 100), Commit(Payments, 1, 100)], CancellationToken.None))
            .ToList();
        foreach (var call in refused)
        {
            await Assert.ThrowsAsync<SiloFencedException>(() => call);
        }

        await Assert.ThrowsAsync<SiloFencedException>(() => owned.Store.DeleteAsync("g0", null, CancellationToken.None));
        Assert.Equal(20, owned.Store.Statistics.FencedCalls);
        Assert.Equal([(0, 5L)], (await owned.Store.ReadAsync("g0", CancellationToken.None)).Select(o => (o.Partition, o.Offset)));
        Assert.Equal(1, await CountRowsAsync(owned.ClusterId, "consumer_offsets"));
        Assert.Equal(["g0"], await owned.Store.ListGroupsAsync(null, 100, CancellationToken.None));
    }

    [Fact]
    public async Task A_commit_racing_the_declaration_of_death_waits_for_it_and_then_writes_nothing()
    {
        var clusterId = NewCluster();
        var silo = new SiloAddress("http://127.0.0.1:13", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");
        await using var owned = new OwnedOffsetStore(fixture.Database, clusterId, writer: new FixedWriter(silo));

        await using var peer = new NpgsqlConnection(fixture.Database.ConnectionString);
        await peer.OpenAsync();
        await using var transaction = await peer.BeginTransactionAsync();
        await MembershipRows.ExecuteAsync(peer, transaction, "SELECT 1 FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 FOR UPDATE", clusterId, silo);
        var commit = owned.Store.CommitAsync("g", [Commit(Orders, 0, 7)], CancellationToken.None);
        await MembershipRows.WaitUntilABackendWaitsOnALockAsync(fixture.Database, "the batch waits on the membership row lock");
        Assert.False(commit.IsCompleted);

        await MembershipRows.ExecuteAsync(peer, transaction, "UPDATE membership SET status = 'Dead' WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3", clusterId, silo);
        await transaction.CommitAsync();

        await Assert.ThrowsAsync<SiloFencedException>(() => commit);
        Assert.Empty(await owned.Store.ReadAsync("g", CancellationToken.None));
    }

    [Fact]
    public async Task A_batch_looks_its_rows_up_by_key_whatever_the_statistics_said_when_it_was_planned()
    {
        // The batch statement runs its generic plan, made at a connection's first batch and kept. Made over a nearly
        // empty table it hashed every later batch against a bitmap scan of every offset of the cluster (38 ms for 300
        // rows over 200k offsets, growing with the table); a custom plan for 1000 rows over 20k offsets hashed the
        // input against a sequential scan of the whole table.
        const int Groups = 2000;
        const int Partitions = 10;
        const string Cluster = "plans";
        await using var database = await TestDatabase.CreateAsync(migrate: true);
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();

        // No ANALYZE behind the test's back: a new plan is what autovacuum's statistics would bring.
        await PlanProbe.ExecuteAsync(connection, "ALTER TABLE consumer_offsets SET (autovacuum_enabled = false)");
        var probe = await PlanProbe.PrepareAsync(connection, "offset_batch",
            "text, text[], uuid[], int[], text[], bigint[], int[], text[], text, bigint", PostgresOffsetStore.CommitSql, PostgresOffsetStore.BatchSettingsSql);
        string Arguments(IReadOnlyCollection<(string Group, int Partition)> rows) =>
            $"'{Cluster}', {PlanProbe.Array(rows.Select(r => r.Group))}, {PlanProbe.Array(rows.Select(_ => Orders))}, " +
            $"{PlanProbe.Array(rows.Select(r => r.Partition))}, {PlanProbe.Array(rows.Select(_ => "orders"))}, {PlanProbe.Array(rows.Select(_ => 5))}, " +
            $"{PlanProbe.Array(rows.Select(_ => -1))}, {PlanProbe.Array(rows.Select(_ => "NULL"))}, NULL, NULL";

        await probe.RunAndRollBackAsync(Arguments([("g1", 0)]));
        await PlanProbe.ExecuteAsync(connection,
            $"""
            INSERT INTO consumer_offsets (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch)
            SELECT '{Cluster}', 'g' || g, '{Orders}', p, 'orders', 0, -1 FROM generate_series(1, {Groups}) AS g, generate_series(0, {Partitions - 1}) AS p
            """);

        var batch = Enumerable.Range(0, 1000).Select(i => (Group: "g" + (1 + i * 7 % Groups), Partition: i % Partitions)).Distinct().ToArray();
        string[] key = ["cluster_id", "group_id", "topic_id", "partition"];
        PlanProbe.AssertKeyLookups(await probe.ExplainAsync(Arguments(batch)), "consumer_offsets", key);

        // With statistics of the full table (ANALYZE makes the plan again).
        await PlanProbe.ExecuteAsync(connection, "ANALYZE consumer_offsets");
        PlanProbe.AssertKeyLookups(await probe.ExplainAsync(Arguments(batch)), "consumer_offsets", key);
    }

    [Fact]
    public async Task Bad_input_is_refused_before_it_is_sent_and_fails_no_other_call()
    {
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        var store = owned.Store;
        var good = Enumerable.Range(0, 10).Select(group => store.CommitAsync($"good{group}", [Commit(Orders, 0, group)], CancellationToken.None)).ToList();

        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, 0, -1)], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, -1, 0)], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, 0, 1, new string('m', OffsetValidation.MaxMetadataLength + 1))], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, 0, 1, "nul\0")], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, 0, 1, "lone \ud800 surrogate")], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [Commit(Orders, 0, 1), null!], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("g", [new OffsetCommit(Orders, null!, 0, 1, -1, null)], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync("", [Commit(Orders, 0, 1)], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync(new string('g', OffsetValidation.MaxGroupIdLength + 1), [Commit(Orders, 0, 1)], CancellationToken.None));

        // The longest accepted values are storable.
        await store.CommitAsync(new string('g', OffsetValidation.MaxGroupIdLength), [Commit(Orders, 0, 0, new string('m', OffsetValidation.MaxMetadataLength))], CancellationToken.None);
        await Task.WhenAll(good);
        Assert.Empty(await store.ReadAsync("g", CancellationToken.None));
        Assert.Equal(11, await CountRowsAsync(owned.ClusterId, "consumer_offsets"));
    }

    [Fact]
    public async Task A_database_failure_surfaces_as_an_unknown_outcome()
    {
        // Nothing listens on port 1: opening the batch's connection fails.
        await using var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=postgres;Database=postgres;Timeout=2");
        await using var store = new PostgresOffsetStore(dataSource, Options.Create(new PostgresStorageOptions { ClusterId = NewCluster() }));

        var failure = await Assert.ThrowsAsync<WriteOutcomeUnknownException>(() => store.CommitAsync("g", [Commit(Orders, 0, 1)], CancellationToken.None));
        Assert.True(failure.IsRetryable);
        Assert.IsAssignableFrom<NpgsqlException>(failure.InnerException);
        Assert.Equal((1L, 0L), (store.Statistics.FailedBatches, store.Statistics.Batches));
    }

    [Fact]
    public async Task Groups_with_offsets_are_listed_in_ordinal_pages_by_both_stores()
    {
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        foreach (var store in new IOffsetStore[] { owned.Store, new InMemoryOffsetStore() })
        {
            // Ordinal order: upper case before lower case, whatever the database's collation says.
            string[] ids = ["b", "B", "a.1", "a-2", "z", "gone"];
            foreach (var id in ids)
            {
                await store.CommitAsync(id, [Commit(Orders, 0, 1), Commit(Orders, 1, 1)], CancellationToken.None);
            }

            // A group stays listed while it has an offset left, and goes with its last one.
            Assert.Equal(1, await store.DeleteAsync("z", [new OffsetKey(Orders, 1)], CancellationToken.None));
            Assert.Equal(2, await store.DeleteAsync("gone", null, CancellationToken.None));
            string[] expected = [.. ids.Where(id => id != "gone").Order(StringComparer.Ordinal)];
            Assert.Equal(expected, await store.ListGroupsAsync(null, 100, CancellationToken.None));
            var pages = new List<string>();
            for (string? after = null; ;)
            {
                var page = await store.ListGroupsAsync(after, 2, CancellationToken.None);
                pages.AddRange(page);
                if (page.Count < 2)
                {
                    break;
                }

                after = page[^1];
            }

            Assert.Equal(expected, pages);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.ListGroupsAsync(null, 0, CancellationToken.None));
        }
    }

    [Fact]
    public async Task The_migration_applies_on_an_existing_schema_at_version_4()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: false);
        await using (var dataSource = database.CreateDataSource())
        {
            // Version 4 as an older silo left it, with a grain state row in it.
            await using (var create = dataSource.CreateCommand(
                "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"))
            {
                await create.ExecuteNonQueryAsync();
            }

            foreach (var script in SchemaScript.LoadEmbedded().Where(script => script.Version <= 4))
            {
                await using var apply = dataSource.CreateCommand(script.Sql);
                await apply.ExecuteNonQueryAsync();
                await using var record = dataSource.CreateCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)");
                record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = script.Version });
                record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = script.Name });
                await record.ExecuteNonQueryAsync();
            }

            await using (var row = dataSource.CreateCommand(
                "INSERT INTO grain_state (cluster_id, grain_type, grain_key, state_name, version, payload) VALUES ('c', 'topic', 't', 'state', 3, '\\x7b7d')"))
            {
                await row.ExecuteNonQueryAsync();
            }

            var applied = await new SchemaMigrator(dataSource).MigrateAsync();
            Assert.Equal(5, applied[0]);
            Assert.Empty(await new SchemaMigrator(dataSource).MigrateAsync());
        }

        await using var grains = new OwnedStorage(database, "c");
        Assert.Equal(3, (await grains.Storage.ReadAsync(new GrainId("topic", "t"), "state", CancellationToken.None))!.Version);
        await using var offsets = new OwnedOffsetStore(database, "c");
        await offsets.Store.CommitAsync("g", [Commit(Orders, 0, 42)], CancellationToken.None);
        Assert.Equal(42, (await offsets.Store.ReadAsync("g", CancellationToken.None)).Single().Offset);
    }

    [Fact]
    public async Task The_postgres_provider_and_the_in_memory_mode_register_their_offset_stores()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPostgresGrainStorage(fixture.Database.ConnectionString, NewCluster());
        await using (var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true }))
        {
            foreach (var hosted in provider.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
            }

            var store = provider.GetRequiredService<IOffsetStore>();
            Assert.Same(provider.GetRequiredService<PostgresOffsetStore>(), store);
            await store.CommitAsync("g", [Commit(Orders, 0, 1)], CancellationToken.None);
            Assert.Single(await store.ReadAsync("g", CancellationToken.None));
        }

        var memory = new ServiceCollection();
        memory.AddLogging();
        memory.AddGrainRuntime().UseInMemoryStorage();
        await using var inMemory = memory.BuildServiceProvider();
        Assert.IsType<InMemoryOffsetStore>(inMemory.GetRequiredService<IOffsetStore>());
    }

    [Fact]
    public void Offset_batch_limits_default_to_1024_rows_and_4_batches_and_are_validated()
    {
        var defaults = new PostgresStorageOptions { ClusterId = "c" };
        Assert.Equal((1024, 4), (defaults.MaxOffsetBatchSize, defaults.MaxConcurrentOffsetBatches));

        var result = new PostgresStorageOptionsValidator().Validate(
            Options.DefaultName, new PostgresStorageOptions { ClusterId = "c", MaxOffsetBatchSize = 0, MaxConcurrentOffsetBatches = 0 });
        Assert.Equal(2, result.Failures?.Count(failure => failure.Contains("Offset", StringComparison.Ordinal)));
        using var dataSource = NpgsqlDataSource.Create(fixture.Database.ConnectionString);
        Assert.Throws<OptionsValidationException>(() => new PostgresOffsetStore(
            dataSource,
            Options.Create(new PostgresStorageOptions { ClusterId = "c", MaxConcurrentOffsetBatches = 0 })));
    }

    /// <summary>What every store must do, whatever it stores in.</summary>
    private static async Task AssertRoundTripAsync(IOffsetStore store)
    {
        Assert.Empty(await store.ReadAsync("g", CancellationToken.None));
        var before = DateTimeOffset.UtcNow.AddMinutes(-5);

        await store.CommitAsync("g", [Commit(Orders, 0, 10, "m0"), Commit(Orders, 1, 11), Commit(Payments, 0, 20)], CancellationToken.None);
        await store.CommitAsync("other", [Commit(Orders, 0, 99)], CancellationToken.None);
        await store.CommitAsync("g", [], CancellationToken.None);

        var offsets = await store.ReadAsync("g", CancellationToken.None);
        Assert.Equal(
            [("orders", 0, 10L, 3, "m0"), ("orders", 1, 11L, 3, null), ("payments", 0, 20L, 3, null)],
            offsets.Select(o => (o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata)));
        Assert.Equal([Orders, Orders, Payments], offsets.Select(o => o.TopicId));
        Assert.All(offsets, o => Assert.InRange(o.CommittedAt, before, DateTimeOffset.UtcNow.AddMinutes(5)));

        // A later commit replaces the partition's row, metadata included; the others stay.
        await store.CommitAsync("g", [new OffsetCommit(Orders, "orders", 0, 15, 4, null)], CancellationToken.None);
        offsets = await store.ReadAsync("g", CancellationToken.None);
        Assert.Equal([(0, 15L, 4, null), (1, 11L, 3, null), (0, 20L, 3, null)], offsets.Select(o => (o.Partition, o.Offset, o.LeaderEpoch, o.Metadata)));

        Assert.Equal(1, await store.DeleteAsync("g", [new OffsetKey(Orders, 1), new OffsetKey(Orders, 7)], CancellationToken.None));
        Assert.Equal([(Orders, 0), (Payments, 0)], (await store.ReadAsync("g", CancellationToken.None)).Select(o => (o.TopicId, o.Partition)));
        Assert.Equal(2, await store.DeleteAsync("g", null, CancellationToken.None));
        Assert.Empty(await store.ReadAsync("g", CancellationToken.None));
        Assert.Equal(0, await store.DeleteAsync("g", null, CancellationToken.None));
        Assert.Single(await store.ReadAsync("other", CancellationToken.None));
    }

    private static OffsetCommit Commit(Guid topicId, int partition, long offset, string? metadata = null)
        => new(topicId, topicId == Orders ? "orders" : "payments", partition, offset, 3, metadata);

    private static string NewCluster() => "cluster-" + Guid.NewGuid().ToString("N");

    /// <summary>Distinct commit transactions that wrote the cluster's offset rows, as PostgreSQL saw them (each row
    /// version carries the id of the transaction that wrote it).</summary>
    private async Task<long> CountTransactionsOfAsync(OwnedOffsetStore owned)
    {
        await using var command = owned.DataSource.CreateCommand("SELECT count(DISTINCT xmin::text) FROM consumer_offsets WHERE cluster_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> CountRowsAsync(string clusterId, string table)
    {
        await using var connection = new NpgsqlConnection(fixture.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE cluster_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>An offset store with its own data source, both disposed together.</summary>
    private sealed class OwnedOffsetStore : IAsyncDisposable
    {
        public OwnedOffsetStore(TestDatabase database, string clusterId, int maxBatchSize = 1024, int maxConcurrentBatches = 4, IWriterFence? writer = null)
        {
            DataSource = database.CreateDataSource();
            ClusterId = clusterId;
            Store = new PostgresOffsetStore(
                DataSource,
                Options.Create(new PostgresStorageOptions { ClusterId = clusterId, MaxOffsetBatchSize = maxBatchSize, MaxConcurrentOffsetBatches = maxConcurrentBatches }),
                writer: writer);
        }

        public PostgresOffsetStore Store { get; }

        public NpgsqlDataSource DataSource { get; }

        public string ClusterId { get; }

        public async ValueTask DisposeAsync()
        {
            await Store.DisposeAsync();
            await DataSource.DisposeAsync();
        }
    }
}
