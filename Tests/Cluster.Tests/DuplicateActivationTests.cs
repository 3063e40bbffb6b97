using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Two activations of one grain can exist for a moment while views disagree. Here one is forced onto a
/// silo that does not own the grain, bypassing placement, to show storage fences the loser.</summary>
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

    private static Task<object?> ForceLocalCallAsync(InProcessSilo silo, string key, string method, object?[] arguments)
    {
        var registry = silo.Services.GetRequiredService<GrainTypeRegistry>();
        var grainInterface = registry.GetInterface(typeof(IAccountGrain));
        Assert.True(grainInterface.TryGetMethod(method, out var grainMethod), $"no method {method}");
        var request = new GrainRequest(new GrainId(grainInterface.GrainType, key), grainInterface, grainMethod, arguments, null, CancellationToken.None);
        silo.Services.GetRequiredService<ActivationCatalog>().Dispatch(request);
        return request.Completion;
    }
}
