using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.TestGrains;

/// <summary>Calls along a path of relay grains (which land on different silos), for cross-silo chains and cycles.</summary>
public interface IRelayGrain : IGrainWithStringKey
{
    Task<string[]> RelayAsync(string[] path);

    /// <summary>A turn that waits <paramref name="delayMs"/> ms (so that its silo can start to leave meanwhile; see
    /// <see cref="SlowTurns.Started"/>), then deposits 1 into <paramref name="account"/> and returns the balance.</summary>
    Task<long> DepositLaterAsync(string account, string operationId, int delayMs);
}

internal sealed class RelayGrain(IClusterMembership membership) : Grain, IRelayGrain
{
    public async Task<string[]> RelayAsync(string[] path)
    {
        var here = $"{Key}@{membership.Self}";
        if (path.Length == 0)
        {
            return [here];
        }

        var rest = await GrainFactory.GetGrain<IRelayGrain>(path[0]).RelayAsync(path[1..]);
        return [here, .. rest];
    }

    public async Task<long> DepositLaterAsync(string account, string operationId, int delayMs)
    {
        SlowTurns.Signal(operationId).TrySetResult();
        await Task.Delay(delayMs);
        return await GrainFactory.GetGrain<IAccountGrain>(account).DepositAsync(1, operationId);
    }
}
