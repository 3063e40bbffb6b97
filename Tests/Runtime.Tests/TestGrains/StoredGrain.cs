namespace OrleansMeta.Runtime.Tests.Infrastructure;

public sealed record StoredGrainState
{
    public List<string> Items { get; init; } = [];
}

public interface IStoredGrain : IGrainWithStringKey
{
    Task<long> AddAsync(string item);

    [ReadOnly]
    Task<string[]> ItemsAsync();

    Task ClearAsync();

    Task<long> VersionAsync();
}

internal sealed class StoredGrain(
    [PersistentState("items")] IPersistentState<StoredGrainState> state,
    TestProbe probe) : Grain, IStoredGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        probe.Record($"activate:{Key}:v{state.Version}");
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        probe.Record($"deactivate:{Key}:{reason}");
        return Task.CompletedTask;
    }

    public async Task<long> AddAsync(string item)
    {
        state.State.Items.Add(item);
        await state.WriteStateAsync();
        return state.Version;
    }

    public Task<string[]> ItemsAsync() => Task.FromResult(state.State.Items.ToArray());

    public Task ClearAsync() => state.ClearStateAsync();

    public Task<long> VersionAsync() => Task.FromResult(state.Version);
}
