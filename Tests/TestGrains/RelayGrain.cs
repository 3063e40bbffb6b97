using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.TestGrains;

/// <summary>Calls along a path of relay grains (which land on different silos), for cross-silo chains and cycles.</summary>
public interface IRelayGrain : IGrainWithStringKey
{
    Task<string[]> RelayAsync(string[] path);
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
}
