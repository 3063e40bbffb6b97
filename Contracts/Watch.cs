using System.Text.Json;

namespace OrleansMeta.Contracts;

/// <summary>What a <see cref="WatchEvent"/> is (<see cref="WatchEvent.Kind"/>).</summary>
public static class WatchEventKinds
{
    /// <summary>A metadata log record: one committed change, at its own offset.</summary>
    public const string Record = "record";

    /// <summary>A snapshot of the current state begins (the offset asked for is no longer in the log, or none was
    /// given). Whatever a reader built from an earlier, unfinished snapshot is to be dropped.</summary>
    public const string SnapshotStart = "snapshot-start";

    /// <summary>One entity's current state, as a record of its type (<c>broker</c>, <c>topic</c>, <c>partition</c>,
    /// <c>controller</c>, <c>group</c>, <c>group-member</c>) written as of the snapshot's offset.</summary>
    public const string Snapshot = "snapshot";

    /// <summary>The snapshot is complete: it is the state at <see cref="WatchEvent.Offset"/> for the filter, and
    /// records follow from the next offset on.</summary>
    public const string SnapshotEnd = "snapshot-end";

    /// <summary>No record for the filter up to <see cref="WatchEvent.Offset"/>: the stream has passed it (sent with the
    /// keep-alives when a filter skipped records, so a reader resuming later need not scan them again).</summary>
    public const string Progress = "progress";
}

/// <summary>
/// One event of a watch stream (<c>GET /v1/watch</c>, Server-Sent Events; the SSE <c>data:</c> of every event).
/// </summary>
/// <param name="Kind">What the event is: see <see cref="WatchEventKinds"/>.</param>
/// <param name="Offset">For a record, its log offset (also the SSE <c>id:</c>). For snapshot events, the offset the
/// snapshot is at. For progress, the offset the stream has passed.</param>
/// <param name="Type">The record type (<c>broker</c>, <c>topic</c>, <c>partition</c>, <c>controller</c>, <c>group</c>,
/// <c>group-member</c>) of a record or a snapshot item; null for markers.</param>
/// <param name="Key">The entity: the broker id, the topic name, <c>topicId/partition</c>, <c>controller</c>, the group id,
/// or <c>groupId/memberId</c>; null for markers.</param>
/// <param name="Record">The entity's new state as the log holds it (camelCase JSON; a topic record with
/// <c>deleted: true</c> removes the topic). A broker's <c>registered</c> record carries its broker epoch (the record's
/// offset). A snapshot's topic item carries the topic's current partitions in <c>initialPartitions</c>. Group records are
/// <see cref="GroupRecord"/> and <see cref="GroupMemberRecord"/>. Null for markers.</param>
/// <param name="WrittenAt">When the record was committed; null for snapshot items and markers.</param>
public sealed record WatchEvent(string Kind, long Offset, string? Type, string? Key, JsonElement? Record, DateTimeOffset? WrittenAt)
{
    /// <summary>Whether this is a log record (rather than part of a snapshot, or a marker).</summary>
    public bool IsRecord => Kind == WatchEventKinds.Record;
}

/// <summary>
/// The last event of a stream that a silo ended because its reader fell too far behind (SSE event <c>cut-off</c>):
/// reconnect with <c>fromOffset</c> (or <c>Last-Event-ID</c>) to go on. The client SDK does this itself.
/// </summary>
/// <param name="ResumeFrom">The first offset not delivered: ask for it next.</param>
/// <param name="Reason">Why the stream ended, for people.</param>
public sealed record WatchCutOff(long ResumeFrom, string Reason);
