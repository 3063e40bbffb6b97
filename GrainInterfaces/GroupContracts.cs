using OrleansMeta.Contracts;
using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

/// <summary>
/// One consumer group (key: the group id): KIP-848 membership with server-side assignment and incremental
/// reconciliation, and its committed offsets. Member sessions live in memory; membership and assignment transitions
/// are written; offsets go to the offset store, one row per partition.
/// </summary>
[GrainType("group")]
public interface IConsumerGroupGrain : IGrainWithStringKey
{
    Task<GroupHeartbeatResponse> HeartbeatAsync(GroupHeartbeatRequest heartbeat);

    /// <summary>Durable when the call returns.</summary>
    Task CommitAsync(CommitOffsetsRequest commit);

    /// <summary>Committed offsets, all or those of <paramref name="topics"/>.</summary>
    Task<IReadOnlyList<GroupOffset>> FetchAsync(IReadOnlyList<string>? topics);

    /// <summary>Deletes the offsets of the named topics (all partitions) or of everything; refused for topics the group
    /// still consumes while it has members (Kafka's GROUP_SUBSCRIBED_TO_TOPIC).</summary>
    Task<int> DeleteOffsetsAsync(IReadOnlyList<string>? topics);

    /// <summary>Resets offsets of an empty group (Kafka's kafka-consumer-groups --reset-offsets); returns the offsets
    /// written (or that would be, with DryRun).</summary>
    Task<IReadOnlyList<GroupOffset>> ResetAsync(ResetOffsetsRequest reset);

    [ReadOnly]
    Task<GroupDescription> DescribeAsync();

    /// <summary>The group's line in a listing of every group, with its lag from this silo's log offsets; null when the
    /// group does not exist (no member ever joined and no offsets).</summary>
    [ReadOnly]
    Task<GroupListing?> ListingAsync();

    /// <summary>Deletes an empty group and its offsets (NON_EMPTY_GROUP while it has members).</summary>
    Task DeleteAsync();
}
