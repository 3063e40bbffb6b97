using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Two activations of one grain can exist for a moment while views disagree. Here one is forced onto a
/// silo that does not own the grain, bypassing placement and the activation's own ownership check, to show storage
/// fences the loser; and a call that reaches a non-owner's catalog as a late dispatch does starts nothing there.</summary>
public sealed class DuplicateActivationTests
{
    [Fact]
    public async Task A_forced_duplicate_activation_cannot_double_apply_a_write()
    {
        await using var cluster = new TestCluster("duplicate");
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 2; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        for (var round = 0; round < 10; round++)
        {
            var key = $"dup-{round}";
            var owner = silos.Single(s => s.Services.GetRequiredService<ClusterCallDispatcher>().IsLocalOwner(new GrainId("account", key)));
            var other = silos.Single(s => s != owner);

            // Both activations load the same version.
            var viaOwner = owner.Grains.GetGrain<IAccountGrain>(key);
            await viaOwner.GetAsync();
            await ForceLocalCallAsync(other, key, "GetAsync()", []);

            // Both write at once: exactly one commits.
            var results = await Task.WhenAll(
                Outcome(viaOwner.DepositAsync(1, $"owner-{round}")),
                Outcome(ForceLocalCallAsync(other, key, "DepositAsync(Int64,String)", [1L, $"duplicate-{round}"])));
            Assert.Single(results, r => r is null);
            Assert.Single(results, r => r is InconsistentStateException);

            var state = await viaOwner.GetAsync();
            Assert.Single(state.Operations);
            Assert.Equal(1, state.Balance);
        }
    }

    [Fact]
    public async Task A_call_delivered_where_the_newest_view_names_another_owner_starts_no_activation_there_and_runs_on_the_owner()
    {
        // What a call dispatched on a view read just before a newer one arrived does: it reaches the catalog of a silo
        // that no longer owns the grain, after that silo's rebalancer scanned it. The activation it creates checks the
        // newest view before loading anything and sends its calls to the owner.
        await using var cluster = new TestCluster("late-dispatch");
        var silos = new List<InProcessSilo>();
        for (var i = 0; i < 2; i++)
        {
            silos.Add(await cluster.StartInProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        for (var round = 0; round < 5; round++)
        {
            var key = $"late-{round}";
            var grain = new GrainId("account", key);
            var owner = silos.Single(s => s.Services.GetRequiredService<ClusterCallDispatcher>().IsLocalOwner(grain));
            var other = silos.Single(s => s != owner);

            await ForceLocalCallAsync(other, key, "DepositAsync(Int64,String)", [1L, $"late-{round}"], checksOwner: true);

            Assert.DoesNotContain(other.Services.GetRequiredService<ActivationCatalog>().Activations, a => a.GrainId == grain);
            Assert.Contains(owner.Services.GetRequiredService<ActivationCatalog>().Activations, a => a.GrainId == grain);
            var state = await owner.Grains.GetGrain<IAccountGrain>(key).GetAsync();
            Assert.Equal([$"late-{round}"], state.Operations);
        }
    }

    private static async Task<Exception?> Outcome(Task call)
    {
        try
        {
            await call;
            return null;
        }
        catch (Exception exception)
        {
            return exception;
        }
    }

    private static Task<object?> ForceLocalCallAsync(InProcessSilo silo, string key, string method, object?[] arguments, bool checksOwner = false)
    {
        var registry = silo.Services.GetRequiredService<GrainTypeRegistry>();
        var grainInterface = registry.GetInterface(typeof(IAccountGrain));
        Assert.True(grainInterface.TryGetMethod(method, out var grainMethod), $"no method {method}");
        var request = new GrainRequest(new GrainId(grainInterface.GrainType, key), grainInterface, grainMethod, arguments, null, CancellationToken.None);
        silo.Services.GetRequiredService<ActivationCatalog>().Dispatch(request, checksOwner);
        return request.Completion;
    }
}
