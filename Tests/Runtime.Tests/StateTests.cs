using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

public sealed class StateTests
{
    [Fact]
    public async Task State_is_loaded_before_activation_and_written_with_growing_versions()
    {
        var storage = new InMemoryGrainStorage();
        await using (var runtime = await TestRuntime.StartAsync(storage: storage))
        {
            var grain = runtime.Grains.GetGrain<IStoredGrain>("list");
            Assert.Equal(1, await grain.AddAsync("a"));
            Assert.Equal(2, await grain.AddAsync("b"));
        }

        await using (var restarted = await TestRuntime.StartAsync(storage: storage))
        {
            var grain = restarted.Grains.GetGrain<IStoredGrain>("list");
            Assert.Equal(["a", "b"], await grain.ItemsAsync());
            Assert.Contains("activate:list:v2", restarted.Probe.Events);
            await grain.ClearAsync();
            Assert.Empty(await grain.ItemsAsync());
            Assert.Equal(3, await grain.VersionAsync());
        }
    }

    [Fact]
    public async Task Two_activations_of_one_grain_cannot_both_write_and_the_loser_reloads()
    {
        var storage = new InMemoryGrainStorage();
        await using var siloA = await TestRuntime.StartAsync(storage: storage);
        await using var siloB = await TestRuntime.StartAsync(storage: storage);
        var onA = siloA.Grains.GetGrain<IStoredGrain>("contested");
        var onB = siloB.Grains.GetGrain<IStoredGrain>("contested");

        // Both activations load version 0.
        Assert.Empty(await onA.ItemsAsync());
        Assert.Empty(await onB.ItemsAsync());

        Assert.Equal(1, await onA.AddAsync("from-a"));
        var conflict = await Assert.ThrowsAsync<InconsistentStateException>(() => onB.AddAsync("from-b"));
        Assert.Equal(0, conflict.ExpectedVersion);
        Assert.Equal(1, conflict.StoredVersion);
        await Eventually.Until(() => siloB.Probe.Count("deactivate:contested:StateConflict") == 1, "the losing activation deactivates");

        // The next call on B reloads the winner's state; B's lost write left no trace.
        Assert.Equal(["from-a"], await onB.ItemsAsync());
        Assert.Equal(2, await onB.AddAsync("from-b-retried"));
        Assert.Equal(["from-a", "from-b-retried"], await onB.ItemsAsync());
    }
}
