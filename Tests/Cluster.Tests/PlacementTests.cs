using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests;

public sealed class PlacementTests
{
    [Fact]
    public async Task Three_silos_join_and_agree_on_one_view()
    {
        await using var cluster = new TestCluster("join");
        for (var i = 0; i < 3; i++)
        {
            await cluster.StartInProcessSiloAsync();
        }

        await cluster.WaitForAgreementAsync();
        var view = await cluster.Silos[0].GetClusterAsync();
        Assert.Equal(cluster.ClusterId, view.ClusterId);
        Assert.Equal(3, view.Silos.Count(s => s.Status == "active"));
        Assert.All(view.Silos, s => Assert.True(s.Generation > 0));
    }

    [Fact]
    public async Task Grains_spread_over_the_silos_and_a_call_from_any_silo_reaches_the_one_owner()
    {
        await using var cluster = new TestCluster("spread");
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var hosts = new HashSet<string>();
        for (var i = 0; i < 60; i++)
        {
            var key = $"acct-{i}";
            var seen = await Task.WhenAll(silos.Select(s => s.Grains.GetGrain<IAccountGrain>(key).WhereAsync()));

            // Every silo reaches the same activation, on the silo that placement names.
            Assert.Single(seen.Distinct());
            hosts.Add(seen[0].Silo);
        }

        Assert.Equal(3, hosts.Count);
    }

    [Fact]
    public void Placement_is_a_pure_function_of_the_grain_and_the_view_and_moves_little_when_a_silo_leaves()
    {
        var silos = Enumerable.Range(0, 12).Select(i => new SiloAddress($"http://10.0.0.{i}:11111", 1)).ToList();
        var grains = Enumerable.Range(0, 20_000).Select(i => new GrainId("partition", $"orders-{i}")).ToList();
        var before = grains.Select(g => RendezvousPlacement.Owner(g, silos)).ToList();

        Assert.Equal(before, grains.Select(g => RendezvousPlacement.Owner(g, silos.AsEnumerable().Reverse().ToList())));
        var perSilo = before.GroupBy(s => s).Select(g => g.Count()).ToList();
        Assert.All(perSilo, count => Assert.InRange(count, 20_000 / 12 * 0.8, 20_000 / 12 * 1.2));

        var leaving = silos[5];
        var after = grains.Select(g => RendezvousPlacement.Owner(g, silos.Where(s => s != leaving).ToList())).ToList();
        var moved = before.Zip(after).Count(pair => pair.First != pair.Second);
        Assert.Equal(before.Count(s => s == leaving), moved);
    }

    [Fact]
    public void A_key_pinned_to_a_silo_is_owned_by_it_while_it_is_active_and_placed_by_hash_otherwise()
    {
        var silos = Enumerable.Range(0, 12).Select(i => new SiloAddress($"http://10.0.0.{i}:11111", 1)).ToList();
        Assert.All(silos, silo => Assert.Equal(silo, RendezvousPlacement.Owner(new GrainId("partition-batch", RendezvousPlacement.PinnedTo(silo)), silos)));

        // Gone: the key is placed by hash among the silos that are left, and moves no other grain.
        var gone = new GrainId("partition-batch", RendezvousPlacement.PinnedTo(silos[5]));
        var rest = silos.Where(s => s != silos[5]).ToList();
        Assert.Contains(RendezvousPlacement.Owner(gone, rest), rest);
        Assert.All(rest, silo => Assert.Equal(silo, RendezvousPlacement.Owner(new GrainId("partition-batch", RendezvousPlacement.PinnedTo(silo)), rest)));
    }

    [Fact]
    public async Task A_call_chain_across_silos_works_and_a_cycle_across_silos_fails_fast()
    {
        await using var cluster = new TestCluster("chains");
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        // Sixteen hops: the chance that all land on one of three silos is 3 / 3^16.
        var path = await silos[0].Grains.GetGrain<IRelayGrain>("r0").RelayAsync([.. Enumerable.Range(1, 15).Select(i => $"r{i}")]);
        Assert.Equal(16, path.Length);
        Assert.True(path.Select(p => p[(p.IndexOf('@', StringComparison.Ordinal) + 1)..]).Distinct().Count() > 1, "the chain should cross silos");

        var cycle = await Assert.ThrowsAsync<GrainCallCycleException>(
            () => silos[1].Grains.GetGrain<IRelayGrain>("c0").RelayAsync(["c1", "c2", "c0"]));
        Assert.Equal(["relay/c0", "relay/c1", "relay/c2", "relay/c0"], cycle.Cycle.Select(g => g.ToString()));
    }
}
