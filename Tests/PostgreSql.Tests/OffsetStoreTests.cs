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
        Assert.Equal(1, await CountRowsAsync(owned.ClusterId, "consumer_offset_log"));
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
    public async Task A_group_is_compacted_in_its_commits_transactions_and_reads_the_newest_offset_of_every_partition()
    {
        const int Partitions = 100;
        const int Rounds = 40;
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        var store = owned.Store;

        // A first commit of every partition, one at a time: 100 rows of one entry, compacted once they hold 512 entries
        // would be due; then whole-group commits, each one row of 100 entries.
        for (var partition = 0; partition < Partitions; partition++)
        {
            await store.CommitAsync("g", [Commit(Orders, partition, 1, $"first {partition}")], CancellationToken.None);
        }

        for (var round = 2; round <= Rounds; round++)
        {
            await store.CommitAsync("g", [.. Enumerable.Range(0, Partitions).Select(p => Commit(Orders, p, round))], CancellationToken.None);
            await store.CommitAsync("other", [Commit(Payments, round % 3, round)], CancellationToken.None);
        }

        // A read waits for a compaction still running. 100 + 39 x 100 entries: with 100 partitions a compaction is due
        // every 800 entries.
        var offsets = await store.ReadAsync("g", CancellationToken.None);
        Assert.InRange(store.Statistics.Compactions, 4, 6);
        Assert.InRange(await CountRowsAsync(owned.ClusterId, "consumer_offset_log", "g"), 1, PostgresOffsetStore.CompactionFactor);
        Assert.Equal(Enumerable.Range(0, Partitions), offsets.Select(o => o.Partition));
        Assert.All(offsets, o => Assert.Equal((Rounds, (string?)null), (o.Offset, o.Metadata)));
        Assert.Equal([(0, 39L), (1, 40L), (2, 38L)], (await store.ReadAsync("other", CancellationToken.None)).Select(o => (o.Partition, o.Offset)));

        // A store that starts without knowing the group (another silo took it over) counts from what it reads.
        await using var next = new OwnedOffsetStore(fixture.Database, owned.ClusterId);
        Assert.Equal(Partitions, (await next.Store.ReadAsync("g", CancellationToken.None)).Count);
        for (var round = 0; round < PostgresOffsetStore.CompactionFactor; round++)
        {
            await next.Store.CommitAsync("g", [.. Enumerable.Range(0, Partitions).Select(p => Commit(Orders, p, 100 + round))], CancellationToken.None);
        }

        Assert.All(await next.Store.ReadAsync("g", CancellationToken.None), o => Assert.Equal(100 + PostgresOffsetStore.CompactionFactor - 1, o.Offset));
        Assert.InRange(next.Store.Statistics.Compactions, 1, 2);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Random_commits_and_deletes_read_back_as_the_in_memory_store_has_them_across_compactions(int seed)
    {
        // Commits of one to ten partitions, deletes of some or all (rarely, as a delete rewrites the group), for four groups whose calls run side by side (so
        // batches mix groups, and a group's calls follow one another as its grain's do), checked against the
        // in-memory store after every round and from a fresh store at the end.
        const int Rounds = 700;
        string[] groups = ["g0", "g1", "g2", "g3"];
        var random = new Random(seed);
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        var model = new InMemoryOffsetStore();
        static IEnumerable<(string, int, long, int, string?)> Shape(IEnumerable<CommittedOffset> offsets)
            => offsets.Select(o => (o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata));

        for (var round = 0; round < Rounds; round++)
        {
            var steps = groups.Select(group =>
            {
                var roll = random.Next(1000);
                if (roll < 2)
                {
                    return (group, Commits: (OffsetCommit[]?)null, Delete: (OffsetKey[]?)null, DeleteAll: true);
                }

                if (roll < 5)
                {
                    OffsetKey[] keys = [.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => new OffsetKey(random.Next(2) == 0 ? Orders : Payments, random.Next(10)))];
                    return (group, null, keys, false);
                }

                OffsetCommit[] commits = [.. Enumerable.Range(0, random.Next(1, 11)).Select(_ =>
                    Commit(random.Next(2) == 0 ? Orders : Payments, random.Next(10), random.Next(1_000_000), random.Next(4) == 0 ? $"m{random.Next(100)}" : null))];
                return (group, commits, null, false);
            }).ToList();

            await Task.WhenAll(steps.Select(async step =>
            {
                if (step.Commits is { } commits)
                {
                    await owned.Store.CommitAsync(step.group, commits, CancellationToken.None);
                    await model.CommitAsync(step.group, commits, CancellationToken.None);
                }
                else
                {
                    var keys = step.DeleteAll ? null : step.Delete;
                    Assert.Equal(
                        await model.DeleteAsync(step.group, keys, CancellationToken.None),
                        await owned.Store.DeleteAsync(step.group, keys, CancellationToken.None));
                }
            }));

            if (round % 50 == 49)
            {
                foreach (var group in groups)
                {
                    Assert.Equal(Shape(await model.ReadAsync(group, CancellationToken.None)), Shape(await owned.Store.ReadAsync(group, CancellationToken.None)));
                }
            }
        }

        Assert.True(owned.Store.Statistics.Compactions > 0, "No group was compacted; the test does not reach the compaction.");
        await using var fresh = new OwnedOffsetStore(fixture.Database, owned.ClusterId);
        foreach (var group in groups)
        {
            Assert.Equal(Shape(await model.ReadAsync(group, CancellationToken.None)), Shape(await fresh.Store.ReadAsync(group, CancellationToken.None)));
        }

        Assert.Equal(
            await model.ListGroupsAsync(null, 10, CancellationToken.None),
            await fresh.Store.ListGroupsAsync(null, 10, CancellationToken.None));
    }

    [Fact]
    public async Task A_commit_of_another_owner_in_flight_while_a_group_is_rewritten_stays_the_newest()
    {
        // Two owners of one group for a moment (a change of owner): the new owner's commit is in flight, its row not yet
        // committed, while the old one rewrites the group's rows. The rewrite cannot see that row and leaves it; the
        // entries it rewrites keep their own (older) numbers, so the in-flight commit still wins once it commits.
        await using var owned = new OwnedOffsetStore(fixture.Database, NewCluster());
        await owned.Store.CommitAsync("g", [Commit(Orders, 0, 10), Commit(Orders, 1, 11)], CancellationToken.None);

        await using var other = new NpgsqlConnection(fixture.Database.ConnectionString);
        await other.OpenAsync();
        await using var transaction = await other.BeginTransactionAsync();
        await using (var append = new NpgsqlCommand("INSERT INTO consumer_offset_log (cluster_id, group_id, entries) VALUES ($1, 'g', $2)", other, transaction))
        {
            append.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
            append.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = OffsetLogEncoding.Encode([LogEntry.Of(Commit(Orders, 0, 20))], numbers: false) });
            await append.ExecuteNonQueryAsync();
        }

        // The old owner rewrites the group (deleting partition 1), its new row numbered after the in-flight one.
        Assert.Equal(1, await owned.Store.DeleteAsync("g", [new OffsetKey(Orders, 1)], CancellationToken.None));
        Assert.Equal([(0, 10L)], (await owned.Store.ReadAsync("g", CancellationToken.None)).Select(o => (o.Partition, o.Offset)));

        await transaction.CommitAsync();
        Assert.Equal([(0, 20L)], (await owned.Store.ReadAsync("g", CancellationToken.None)).Select(o => (o.Partition, o.Offset)));
        Assert.Equal(2, await CountRowsAsync(owned.ClusterId, "consumer_offset_log", "g"));

        // The next rewrite folds both rows into one, the newest entry kept.
        Assert.Equal(0, await owned.Store.DeleteAsync("g", [new OffsetKey(Orders, 7)], CancellationToken.None));
        Assert.Equal([(0, 20L)], (await owned.Store.ReadAsync("g", CancellationToken.None)).Select(o => (o.Partition, o.Offset)));
        Assert.Equal(1, await CountRowsAsync(owned.ClusterId, "consumer_offset_log", "g"));
    }

    [Fact]
    public async Task The_migration_to_the_offset_log_keeps_every_offset_and_its_commit_time()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: false);
        var committedAt = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        await using (var dataSource = database.CreateDataSource())
        {
            await ApplyScriptsUpToAsync(dataSource, 8);
            await using (var rows = dataSource.CreateCommand(
                """
                INSERT INTO consumer_offsets (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, committed_at)
                VALUES ('c', 'g', $1, 0, 'orders', 10, 3, 'm', $3), ('c', 'g', $1, 1, 'orders', 11, 3, NULL, $3),
                       ('c', 'g', $2, 0, 'payments', 20, 3, NULL, $3), ('c', 'h', $1, 0, 'orders', 5, -1, NULL, $3),
                       ('other', 'g', $1, 0, 'orders', 99, 3, NULL, $3)
                """))
            {
                rows.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Orders });
                rows.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = Payments });
                rows.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = committedAt });
                await rows.ExecuteNonQueryAsync();
            }

            await using (var groups = dataSource.CreateCommand("INSERT INTO consumer_group_commits (cluster_id, group_id) VALUES ('c', 'g'), ('c', 'h'), ('other', 'g')"))
            {
                await groups.ExecuteNonQueryAsync();
            }

            Assert.Equal([9], await new SchemaMigrator(dataSource).MigrateAsync());
        }

        await using var offsets = new OwnedOffsetStore(database, "c");
        var read = await offsets.Store.ReadAsync("g", CancellationToken.None);
        Assert.Equal(
            [("orders", 0, 10L, 3, "m"), ("orders", 1, 11L, 3, null), ("payments", 0, 20L, 3, null)],
            read.Select(o => (o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata)));
        Assert.All(read, o => Assert.Equal(committedAt, o.CommittedAt));
        Assert.Equal(["g", "h"], await offsets.Store.ListGroupsAsync(null, 10, CancellationToken.None));

        // A commit after the migration supersedes the migrated entry.
        await offsets.Store.CommitAsync("g", [Commit(Orders, 0, 12)], CancellationToken.None);
        Assert.Equal([12L, 11L, 20L], (await offsets.Store.ReadAsync("g", CancellationToken.None)).Select(o => o.Offset));
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
        Assert.Equal(11, await CountRowsAsync(owned.ClusterId, "consumer_offset_log"));
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

            await ApplyScriptsUpToAsync(dataSource, 4, createTable: false);

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
        await using var command = owned.DataSource.CreateCommand("SELECT count(DISTINCT xmin::text) FROM consumer_offset_log WHERE cluster_id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> CountRowsAsync(string clusterId, string table, string? groupId = null)
    {
        await using var connection = new NpgsqlConnection(fixture.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table} WHERE cluster_id = $1 AND ($2::text IS NULL OR group_id = $2::text)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)groupId ?? DBNull.Value });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Brings a new database to schema version <paramref name="version"/> as a silo of that version left it.</summary>
    private static async Task ApplyScriptsUpToAsync(NpgsqlDataSource dataSource, int version, bool createTable = true)
    {
        if (createTable)
        {
            await using var create = dataSource.CreateCommand(
                "CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
            await create.ExecuteNonQueryAsync();
        }

        foreach (var script in SchemaScript.LoadEmbedded().Where(script => script.Version <= version))
        {
            await using var apply = dataSource.CreateCommand(script.Sql);
            await apply.ExecuteNonQueryAsync();
            await using var record = dataSource.CreateCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)");
            record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = script.Version });
            record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = script.Name });
            await record.ExecuteNonQueryAsync();
        }
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
