using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

/// <summary>The active controller's epoch and where it runs.</summary>
public sealed record ControllerStatus(long Epoch, string Silo);

public sealed record PartitionRef(string Topic, int Partition);

/// <summary>The one controller of the cluster (key: <see cref="Key"/>). Its epoch fences every decision it writes.</summary>
[GrainType("controller")]
public interface IControllerGrain : IGrainWithStringKey
{
    const string Key = "cluster";

    /// <summary>Activates the controller if needed and returns its epoch.</summary>
    Task<ControllerStatus> GetStatusAsync();

    /// <summary>A broker was fenced, unfenced, registered or entered controlled shutdown at <paramref name="offset"/>:
    /// re-elect where needed (in controlled shutdown, move its leadership away). Callers do not wait for it.</summary>
    Task BrokerChangedAsync(int brokerId, long offset);

    /// <summary>Runs a preferred or unclean election for the given partitions (all partitions when null).</summary>
    Task<IReadOnlyList<PartitionChange>> ElectAsync(PartitionCommandKind kind, IReadOnlyList<PartitionRef>? partitions, long knownOffset);
}
