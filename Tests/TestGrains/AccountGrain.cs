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

/// <summary>A persisted account used to prove that acknowledged writes survive failures and are applied once.</summary>
public interface IAccountGrain : IGrainWithStringKey
{
    /// <summary>Applies a deposit durably and returns the new balance. Acknowledged only after the write committed.</summary>
    Task<long> DepositAsync(long amount, string operationId);

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
