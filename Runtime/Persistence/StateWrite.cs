namespace OrleansMeta.Runtime.Persistence;

/// <summary>
/// A record appended to the cluster's metadata log in the same transaction as a state write: committed together or
/// not at all. Offsets are assigned at commit, gap-free and in commit order.
/// </summary>
/// <param name="Type">What kind of entity the record describes, e.g. <c>topic</c>, <c>partition</c>, <c>broker</c>.</param>
/// <param name="Key">Which entity, e.g. the topic name.</param>
/// <param name="Payload">UTF-8 JSON: the entity's new public state, or <c>null</c> JSON for a deletion.</param>
public sealed record LogRecord(string Type, string Key, byte[] Payload);

/// <summary>
/// A condition on another grain's state row: the write commits only while that row is still at
/// <paramref name="Version"/>. A controller's decisions carry its epoch this way, so a newer controller fences the old.
/// </summary>
public sealed record WriteFence(GrainId GrainId, string StateName, long Version);

/// <summary>One conditional write of a grain state row.</summary>
/// <param name="Payload">The new state, or <c>null</c> to clear it (the row and its version counter stay).</param>
/// <param name="ExpectedVersion">The version storage must hold (0: no row yet).</param>
/// <param name="Records">Metadata log records to append in the same transaction; may be empty.</param>
/// <param name="Fences">Other rows whose versions must hold for the write to commit; may be empty.</param>
public sealed record StateWrite(byte[]? Payload, long ExpectedVersion, IReadOnlyList<LogRecord> Records, IReadOnlyList<WriteFence> Fences)
{
    public static StateWrite Put(byte[] payload, long expectedVersion) => new(payload, expectedVersion, [], []);

    public static StateWrite Clear(long expectedVersion) => new(null, expectedVersion, [], []);
}

/// <summary>The outcome of a committed write.</summary>
/// <param name="Version">The row's new version.</param>
/// <param name="LastLogOffset">The offset of the last log record appended, or <c>null</c> when none was.</param>
public sealed record WriteResult(long Version, long? LastLogOffset);

/// <summary>A write was refused because a fence row moved on (for example a newer controller took over). The grain's own
/// row is untouched and still current.</summary>
public sealed class FencedWriteException(string message, WriteFence fence, long? foundVersion) : GrainRuntimeException(message)
{
    public WriteFence Fence { get; } = fence;

    /// <summary>The version the fence row holds, when known.</summary>
    public long? FoundVersion { get; } = foundVersion;
}

/// <summary>A record as stored in the metadata log.</summary>
public sealed record LoggedRecord(long Offset, string Type, string Key, byte[] Payload, DateTimeOffset WrittenAt);

/// <summary>
/// Read side of the cluster's metadata log: ordered, gap-free offsets starting at 1. Every record at or below the
/// returned head is committed and visible; a reader that remembers the last offset it saw never skips a record.
/// </summary>
/// <remarks>
/// Retention (<see cref="IMetadataSnapshotStore"/>) may delete a prefix of the log that snapshots cover. Offsets stay
/// gap-free from the lowest retained one and <see cref="ReadAsync"/> then starts there: a reader that asks after
/// <c>N-1</c> and gets a first record above <c>N</c> knows records from <c>N</c> on were deleted.
/// </remarks>
public interface IMetadataLog
{
    /// <summary>Up to <paramref name="maxCount"/> records with offsets greater than <paramref name="afterOffset"/>, in order.</summary>
    Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken);

    /// <summary>
    /// The offset of the last record a reader may read (0 when there is none): every record up to it is committed, and
    /// durable where the storage distinguishes the two. Every acknowledged write's offset is at or below it.
    /// </summary>
    Task<long> GetHeadAsync(CancellationToken cancellationToken);

    /// <summary>Completes when records after <paramref name="afterOffset"/> may exist (a notification arrived or
    /// <paramref name="maxWait"/> passed); callers then read.</summary>
    Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken);
}
