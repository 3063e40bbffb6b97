using System.Globalization;
using OrleansMeta.Runtime;
using Xunit.Abstractions;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class BatchingTests(MigratedDatabaseFixture fixture, ITestOutputHelper output) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    private static async Task<(long? Version, InconsistentStateException? Conflict)> Outcome(Task<long> write)
    {
        try
        {
            return (await write, null);
        }
        catch (InconsistentStateException conflict)
        {
            return (null, conflict);
        }
    }

    [Fact]
    public async Task Thousand_concurrent_writes_to_distinct_grains_all_succeed_in_far_fewer_transactions()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grains = Enumerable.Range(0, 1000).Select(i => new GrainId("partition", $"p{i}")).ToArray();

        var versions = await Task.WhenAll(grains.Select(
            (grain, i) => storage.WriteAsync(grain, State, Json.Bytes($$"""{"n":{{i}}}"""), 0, CancellationToken.None)));

        Assert.All(versions, version => Assert.Equal(1, version));
        var stats = storage.Statistics;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{stats.Writes} writes in {stats.Transactions} transactions ({(double)stats.Writes / stats.Transactions:F1} writes per transaction), {stats.Conflicts} conflicts"));
        Assert.Equal(1000, stats.Writes);
        Assert.Equal(0, stats.Conflicts);
        Assert.True(stats.Transactions < stats.Writes, $"{stats.Transactions} transactions for {stats.Writes} writes");
        for (var i = 0; i < grains.Length; i += 97)
        {
            var row = await storage.ReadAsync(grains[i], State, CancellationToken.None);
            Assert.Equal(($$"""{"n":{{i}}}""", 1L), (Json.Text(row!.Payload), row.Version));
        }
    }

    [Fact]
    public async Task Two_writers_racing_with_the_same_expected_version_have_exactly_one_winner_per_grain()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grains = Enumerable.Range(0, 50).Select(i => new GrainId("topic", $"race{i}")).ToArray();
        await Task.WhenAll(grains.Select(grain => storage.WriteAsync(grain, State, Json.Bytes("\"base\""), 0, CancellationToken.None)));

        var races = grains.Select(grain => Task.WhenAll(
            Outcome(storage.WriteAsync(grain, State, Json.Bytes("\"a\""), 1, CancellationToken.None)),
            Outcome(storage.WriteAsync(grain, State, Json.Bytes("\"b\""), 1, CancellationToken.None)))).ToArray();
        var results = await Task.WhenAll(races);

        for (var i = 0; i < grains.Length; i++)
        {
            var (a, b) = (results[i][0], results[i][1]);
            Assert.True(a.Version is null != b.Version is null, $"{grains[i]}: exactly one writer must win");
            var loser = a.Conflict ?? b.Conflict;
            Assert.Equal((1L, 2L), (loser!.ExpectedVersion, loser.StoredVersion));
            var row = await storage.ReadAsync(grains[i], State, CancellationToken.None);
            Assert.Equal((a.Version is null ? "\"b\"" : "\"a\"", 2L), (Json.Text(row!.Payload), row.Version));
        }
    }

    [Fact]
    public async Task Two_storages_racing_for_the_same_grains_have_exactly_one_winner_per_grain()
    {
        // Two silos that both believe they host the same grains (a membership change in progress).
        var clusterId = NewClusterId();
        await using var first = new OwnedStorage(fixture.Database, clusterId);
        await using var second = new OwnedStorage(fixture.Database, clusterId);
        var grains = Enumerable.Range(0, 50).Select(i => new GrainId("broker", $"b{i}")).ToArray();

        for (var round = 0L; round < 3; round++)
        {
            var expected = round;
            var results = await Task.WhenAll(grains.Select(grain => Task.WhenAll(
                Outcome(first.Storage.WriteAsync(grain, State, Json.Bytes("1"), expected, CancellationToken.None)),
                Outcome(second.Storage.WriteAsync(grain, State, Json.Bytes("2"), expected, CancellationToken.None)))));

            for (var i = 0; i < grains.Length; i++)
            {
                var (a, b) = (results[i][0], results[i][1]);
                Assert.True(a.Version is null != b.Version is null, $"round {round}, {grains[i]}: exactly one writer must win");
                Assert.Equal(expected + 1, a.Version ?? b.Version);
                var row = await first.Storage.ReadAsync(grains[i], State, CancellationToken.None);
                Assert.Equal((a.Version is null ? "2" : "1", expected + 1), (Json.Text(row!.Payload), row.Version));
            }
        }
    }

    [Fact]
    public async Task Batch_mixing_conflicts_and_successes_gives_each_caller_its_own_result()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var existing = Enumerable.Range(0, 200).Select(i => new GrainId("group", $"g{i}")).ToArray();
        await Task.WhenAll(existing.Select(grain => storage.WriteAsync(grain, State, Json.Bytes("0"), 0, CancellationToken.None)));
        var conflictsBefore = storage.Statistics.Conflicts;

        // Even grains: current version (wins). Odd: a version from the future (loses). New grains: 0 wins, 3 loses.
        var writes = existing.Select((grain, i) => i % 2 == 0
                ? storage.WriteAsync(grain, State, Json.Bytes($"{i}"), 1, CancellationToken.None)
                : storage.ClearAsync(grain, State, 5, CancellationToken.None))
            .Concat(Enumerable.Range(0, 100).Select(i => storage.WriteAsync(
                new GrainId("group", $"new{i}"), State, Json.Bytes($"{i}"), i % 2 == 0 ? 0 : 3, CancellationToken.None)))
            .Select(Outcome)
            .ToArray();
        var outcomes = await Task.WhenAll(writes);

        for (var i = 0; i < existing.Length; i++)
        {
            var row = await storage.ReadAsync(existing[i], State, CancellationToken.None);
            if (i % 2 == 0)
            {
                Assert.Equal(2, outcomes[i].Version);
                Assert.Equal(($"{i}", 2L), (Json.Text(row!.Payload), row.Version));
            }
            else
            {
                Assert.Equal((5L, 1L), (outcomes[i].Conflict!.ExpectedVersion, outcomes[i].Conflict!.StoredVersion));
                Assert.Equal(("0", 1L), (Json.Text(row!.Payload), row.Version));
            }
        }

        for (var i = 0; i < 100; i++)
        {
            var outcome = outcomes[existing.Length + i];
            var row = await storage.ReadAsync(new GrainId("group", $"new{i}"), State, CancellationToken.None);
            if (i % 2 == 0)
            {
                Assert.Equal(1, outcome.Version);
                Assert.Equal(($"{i}", 1L), (Json.Text(row!.Payload), row.Version));
            }
            else
            {
                Assert.Equal((3L, 0L), (outcome.Conflict!.ExpectedVersion, outcome.Conflict!.StoredVersion));
                Assert.Null(row);
            }
        }

        Assert.Equal(150, storage.Statistics.Conflicts - conflictsBefore);
    }

    [Fact]
    public async Task Many_writes_to_one_grain_in_quick_succession_apply_in_turn()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId(), maxBatchSize: 8, maxConcurrentBatches: 2);
        var grain = new GrainId("controller", "0");

        // Each write expects the version the previous one produces, all queued at once: only waiting for the row's
        // previous batch (never two writes of one row in a batch or in flight together) lets every one of them win.
        var writes = new List<Task<long>>();
        for (var version = 0L; version < 20; version++)
        {
            writes.Add(owned.Storage.WriteAsync(grain, State, Json.Bytes($"{version}"), version, CancellationToken.None));
        }

        Assert.Equal(Enumerable.Range(1, 20).Select(v => (long)v), await Task.WhenAll(writes));
    }

    [Fact]
    public async Task When_a_batch_fails_every_caller_in_it_gets_the_error_rather_than_a_conflict()
    {
        // A database without the schema: the batch statement itself fails.
        await using var bare = await TestDatabase.CreateAsync(migrate: false);
        await using var owned = new OwnedStorage(bare, NewClusterId());

        var writes = Enumerable.Range(0, 20)
            .Select(i => owned.Storage.WriteAsync(new GrainId("topic", $"t{i}"), State, Json.Bytes("{}"), 0, CancellationToken.None))
            .ToArray();

        foreach (var write in writes)
        {
            var error = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => write);
            Assert.Equal(Npgsql.PostgresErrorCodes.UndefinedTable, error.SqlState);
        }
    }
}
