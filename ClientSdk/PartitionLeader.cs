namespace OrleansMeta.Client;

/// <summary>The leader of a partition and the leader epoch under which it leads.</summary>
/// <param name="BrokerId">The leader's broker id, or -1 when the partition has no leader (offline).</param>
/// <param name="LeaderEpoch">The leader epoch; requests to the leader carry it, and it never goes back.</param>
public readonly record struct PartitionLeader(int BrokerId, int LeaderEpoch)
{
    /// <summary>Whether the partition has a leader.</summary>
    public bool IsOnline => BrokerId >= 0;
}
