namespace OrleansMeta.Runtime.Persistence;

/// <summary>One partition of a topic, named by the topic's id (a topic deleted and created again under the same name
/// is another topic, so its offsets are not the old one's).</summary>
public readonly record struct OffsetKey(Guid TopicId, int Partition);

/// <summary>One partition's committed position, as a consumer commits it (Kafka's OffsetCommit fields).</summary>
/// <param name="Topic">The topic's name when committed, kept for people reading the table.</param>
/// <param name="LeaderEpoch">The leader epoch of the last consumed record, or -1 when unknown.</param>
/// <param name="Metadata">Free text the consumer attaches, or null.</param>
public sealed record OffsetCommit(Guid TopicId, string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)
{
    public OffsetKey Key => new(TopicId, Partition);
}

/// <summary>A committed offset as stored, with the database's commit time.</summary>
public sealed record CommittedOffset(Guid TopicId, string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata, DateTimeOffset CommittedAt)
{
    public OffsetKey Key => new(TopicId, Partition);
}

/// <summary>
/// Durable committed offsets of consumer groups: one row per (group, topic, partition), so one partition's commit writes
/// O(1) bytes whatever the group's size. Only a group's owning grain calls it, so calls for one group never overlap.
/// </summary>
public interface IOffsetStore
{
    /// <summary>
    /// Stores <paramref name="commits"/> for <paramref name="groupId"/> (a later commit of a partition replaces the
    /// earlier one): all of them or none. Durable when the task completes. Commits of many groups share one database
    /// transaction. A write of a silo declared dead is refused (<see cref="SiloFencedException"/>, as grain state writes
    /// are: <see cref="FencedWriteException"/> names a moved fence row of grain state, which an offset commit has none of)
    /// and changes nothing. A failure that may or may not have committed throws <see cref="WriteOutcomeUnknownException"/>;
    /// commits set offsets, never add to them, so retrying is safe. Input that cannot be stored throws
    /// <see cref="ArgumentException"/> before anything is sent (see <see cref="OffsetValidation"/>).
    /// </summary>
    Task CommitAsync(string groupId, IReadOnlyList<OffsetCommit> commits, CancellationToken cancellationToken);

    /// <summary>Every committed offset of <paramref name="groupId"/>.</summary>
    Task<IReadOnlyList<CommittedOffset>> ReadAsync(string groupId, CancellationToken cancellationToken);

    /// <summary>Deletes the offsets of <paramref name="partitions"/>, or every offset of the group when null; returns
    /// how many were deleted. Fenced like <see cref="CommitAsync"/>.</summary>
    Task<int> DeleteAsync(string groupId, IReadOnlyList<OffsetKey>? partitions, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> ids of groups that have offsets, in ordinal order, after
    /// <paramref name="after"/> (null: from the first). Silos page through it to load the groups they own.</summary>
    Task<IReadOnlyList<string>> ListGroupsAsync(string? after, int limit, CancellationToken cancellationToken);
}
