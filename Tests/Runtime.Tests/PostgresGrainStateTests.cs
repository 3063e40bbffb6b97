using OrleansMeta.Runtime.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansMeta.Runtime.Tests;

/// <summary>Grain state through the runtime on the real PostgreSQL: conflicts, batching, restarts.</summary>
public sealed class PostgresGrainStateTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Of_two_activations_writing_one_grain_exactly_one_wins_and_the_loser_deactivates_and_reloads()
    {
        var clusterId = TestPostgres.NewClusterId("conflict");
        var (storage, dataSource) = await TestPostgres.OpenStorageAsync(clusterId);
        await using var _ = dataSource;
        await using var __ = storage;
        await using var siloA = await TestRuntime.StartAsync(storage: storage);
        await using var siloB = await TestRuntime.StartAsync(storage: storage);

        for (var round = 0; round < 20; round++)
        {
            var key = $"contested-{round}";
            var onA = siloA.Grains.GetGrain<IStoredGrain>(key);
            var onB = siloB.Grains.GetGrain<IStoredGrain>(key);
            await Task.WhenAll(onA.ItemsAsync(), onB.ItemsAsync());

            // Both activations hold version 0 and write at the same moment.
            var writes = new[] { onA.AddAsync("a"), onB.AddAsync("b") };
            var outcomes = await Task.WhenAll(writes.Select(async w =>
            {
                try
                {
                    return (Version: await w, Conflict: (InconsistentStateException?)null);
                }
                catch (InconsistentStateException conflict)
                {
                    return (Version: 0L, Conflict: conflict);
                }
            }));

            Assert.Single(outcomes, o => o.Conflict is null && o.Version == 1);
            var loser = Assert.Single(outcomes, o => o.Conflict is not null);
            Assert.Equal(1, loser.Conflict!.StoredVersion);
            var loserSilo = outcomes[0].Conflict is null ? siloB : siloA;
            await Eventually.Until(() => loserSilo.Probe.Count($"deactivate:{key}:StateConflict") == 1, "the losing activation deactivates");

            // Both silos now see exactly the winner's write.
            var winnerItem = outcomes[0].Conflict is null ? "a" : "b";
            Assert.Equal([winnerItem], await onA.ItemsAsync());
            Assert.Equal([winnerItem], await onB.ItemsAsync());
        }
    }

    [Fact]
    public async Task Many_grains_writing_at_once_share_transactions_and_each_caller_gets_its_own_result()
    {
        var (storage, dataSource) = await TestPostgres.OpenStorageAsync(TestPostgres.NewClusterId("batch"));
        await using var _ = dataSource;
        await using var __ = storage;
        await using var silo = await TestRuntime.StartAsync(storage: storage);

        var before = (storage.Statistics.Writes, storage.Statistics.Transactions);
        var versions = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => silo.Grains.GetGrain<IStoredGrain>($"g{i}").AddAsync($"item-{i}")));
        var writes = storage.Statistics.Writes - before.Writes;
        var transactions = storage.Statistics.Transactions - before.Transactions;
        output.WriteLine($"{writes} writes in {transactions} transactions");

        Assert.All(versions, v => Assert.Equal(1, v));
        Assert.Equal(1000, writes);
        Assert.True(transactions < writes / 4, $"expected batching: {writes} writes took {transactions} transactions");
        for (var i = 0; i < 1000; i += 97)
        {
            Assert.Equal([$"item-{i}"], await silo.Grains.GetGrain<IStoredGrain>($"g{i}").ItemsAsync());
        }
    }

    [Fact]
    public async Task State_survives_a_silo_restart()
    {
        var clusterId = TestPostgres.NewClusterId("restart");
        {
            var (storage, dataSource) = await TestPostgres.OpenStorageAsync(clusterId);
            await using var _ = dataSource;
            await using var __ = storage;
            await using var silo = await TestRuntime.StartAsync(storage: storage);
            var grain = silo.Grains.GetGrain<IStoredGrain>("durable");
            await grain.AddAsync("one");
            await grain.AddAsync("two");
        }

        {
            var (storage, dataSource) = await TestPostgres.OpenStorageAsync(clusterId);
            await using var _ = dataSource;
            await using var __ = storage;
            await using var silo = await TestRuntime.StartAsync(storage: storage);
            var grain = silo.Grains.GetGrain<IStoredGrain>("durable");
            Assert.Equal(["one", "two"], await grain.ItemsAsync());
            Assert.Equal(2, await grain.VersionAsync());
            Assert.Equal(3, await grain.AddAsync("three"));
        }
    }
}
