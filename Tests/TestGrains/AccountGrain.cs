using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.TestGrains;

/// <summary>Where a call ran: the silo incarnation and the activation instance.</summary>
public sealed record Placement(string Silo, string Activation);

public sealed record AccountState
{
    /// <summary>Every applied operation id, in order: a lost or doubled write shows here.</summary>
    public List<string> Operations { get; init; } = [];

    public long Balance { get; set; }
}

/// <summary>Tells a test (in the same process as the silo) when a slow turn has begun.</summary>
public static class SlowTurns
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> s_started = new();

    /// <summary>Completes once the <see cref="IAccountGrain.DepositSlowlyAsync"/> turn with this operation id runs.</summary>
    public static Task Started(string operationId) => Signal(operationId).Task;

    internal static TaskCompletionSource Signal(string operationId)
        => s_started.GetOrAdd(operationId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
}

/// <summary>A persisted account used to prove that acknowledged writes survive failures and are applied once.</summary>
public interface IAccountGrain : IGrainWithStringKey
{
    /// <summary>Applies a deposit durably and returns the new balance. Acknowledged only after the write committed.</summary>
    Task<long> DepositAsync(long amount, string operationId);

    /// <summary>Like <see cref="DepositAsync"/>, but the turn first waits <paramref name="delayMs"/> ms, so a test can
    /// make something happen while it runs; <see cref="SlowTurns.Started"/> tells when it has begun.</summary>
    Task<long> DepositSlowlyAsync(long amount, string operationId, int delayMs);

    [ReadOnly]
    Task<AccountState> GetAsync();

    [ReadOnly]
    Task<Placement> WhereAsync();
}

internal sealed class AccountGrain(
    [PersistentState("account")] IPersistentState<AccountState> state,
    IClusterMembership membership) : Grain, IAccountGrain
{
    private readonly string _activation = Guid.NewGuid().ToString("N")[..8];

    public async Task<long> DepositSlowlyAsync(long amount, string operationId, int delayMs)
    {
        SlowTurns.Signal(operationId).TrySetResult();
        await Task.Delay(delayMs);
        return await DepositAsync(amount, operationId);
    }

    public async Task<long> DepositAsync(long amount, string operationId)
    {
        state.State.Operations.Add(operationId);
        state.State.Balance += amount;
        await state.WriteStateAsync();
        return state.State.Balance;
    }

    public Task<AccountState> GetAsync() => Task.FromResult(state.State);

    public Task<Placement> WhereAsync() => Task.FromResult(new Placement(membership.Self?.ToString() ?? "?", _activation));
}
