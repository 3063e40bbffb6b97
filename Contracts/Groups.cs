namespace OrleansMeta.Contracts;

/// <summary>Partitions of one topic, by id and (for people) name.</summary>
public sealed record GroupTopicPartitions(Guid TopicId, string Topic, IReadOnlyList<int> Partitions);

/// <summary>
/// A consumer's heartbeat (KIP-848's ConsumerGroupHeartbeat). Fields left null are unchanged since the member's last
/// heartbeat; a joining member (epoch 0) must send its subscription.
/// </summary>
/// <param name="MemberId">Chosen by the consumer (a new UUID per process start, kept across its heartbeats).</param>
/// <param name="MemberEpoch">0 to join, the epoch the last answer gave to stay, -1 to leave, -2 for a static member
/// to leave for a moment (keeping its assignment for the session timeout).</param>
/// <param name="InstanceId">A static member's id (group.instance.id), or null.</param>
/// <param name="RackId">The consumer's rack, or null.</param>
/// <param name="ClientId">The client's name, for descriptions.</param>
/// <param name="SubscribedTopicNames">Topic names to consume.</param>
/// <param name="SubscribedTopicRegex">A regular expression whole topic names must match (an empty string removes it).</param>
/// <param name="ServerAssignor">The assignor the member asks for: <c>uniform</c> or <c>range</c>.</param>
/// <param name="OwnedPartitions">What the consumer owns now; it acknowledges revocations by no longer listing them.</param>
public sealed record GroupHeartbeatRequest(
    string MemberId,
    int MemberEpoch,
    string? InstanceId = null,
    string? RackId = null,
    string? ClientId = null,
    IReadOnlyList<string>? SubscribedTopicNames = null,
    string? SubscribedTopicRegex = null,
    string? ServerAssignor = null,
    IReadOnlyList<GroupTopicPartitions>? OwnedPartitions = null);

/// <summary>The answer to a heartbeat: the member's epoch and the partitions it may own now (all of them, every time).</summary>
public sealed record GroupHeartbeatResponse(string MemberId, int MemberEpoch, int HeartbeatIntervalMs, IReadOnlyList<GroupTopicPartitions> Assignment);

/// <summary>One partition's offset in a commit or a reset.</summary>
public sealed record PartitionOffset(string Topic, int Partition, long Offset, int LeaderEpoch = -1, string? Metadata = null);

/// <summary>
/// An offset commit. A member of the group commits with its member id and current epoch; a consumer outside group
/// management (Kafka's <c>assign()</c>) or an admin tool commits with epoch -1 and no member id, which is allowed only
/// while the group has no members.
/// </summary>
public sealed record CommitOffsetsRequest(string? MemberId, int MemberEpoch, IReadOnlyList<PartitionOffset> Offsets);

/// <summary>A committed offset as fetched, with the partition's lag when its leader has reported its log end.</summary>
/// <param name="Topic">The topic's name (the name it had when committed, if it was deleted since).</param>
/// <param name="TopicId">The topic's id.</param>
/// <param name="Partition">The partition.</param>
/// <param name="Offset">The committed offset: the next record the group will read.</param>
/// <param name="LeaderEpoch">The leader epoch of the last consumed record, or -1 when unknown.</param>
/// <param name="Metadata">Free text the consumer attached, or null.</param>
/// <param name="CommittedAt">When the offset was committed.</param>
/// <param name="LogEndOffset">The partition's log end offset as its leader last reported it, or null if no leader has
/// reported it to this service yet.</param>
/// <param name="Lag">Records between the committed offset and the log end (never below 0), or null when the log end is
/// unknown.</param>
public sealed record GroupOffset(
    string Topic,
    Guid TopicId,
    int Partition,
    long Offset,
    int LeaderEpoch,
    string? Metadata,
    DateTimeOffset CommittedAt,
    long? LogEndOffset = null,
    long? Lag = null);

/// <summary>One member as a description shows it.</summary>
public sealed record GroupMemberDescription(
    string MemberId,
    string? InstanceId,
    string? RackId,
    string? ClientId,
    int MemberEpoch,
    string State,
    IReadOnlyList<string> SubscribedTopicNames,
    string? SubscribedTopicRegex,
    IReadOnlyList<GroupTopicPartitions> Assignment,
    IReadOnlyList<GroupTopicPartitions> PendingRevocation,
    IReadOnlyList<GroupTopicPartitions> TargetAssignment);

/// <summary>A group as its coordinator sees it.</summary>
/// <param name="GroupId">The group id.</param>
/// <param name="GroupEpoch">Grows with every change of membership, subscriptions or subscribed partitions.</param>
/// <param name="AssignmentEpoch">The group epoch the target assignment was computed at.</param>
/// <param name="Assignor">The assignor that computed it.</param>
/// <param name="Members">Every member with its assignment, pending revocations and target.</param>
/// <param name="Offsets">Committed offsets.</param>
/// <param name="MetadataOffset">The metadata image offset topic names were read at.</param>
/// <param name="State">Kafka's consumer group states: <c>empty</c>, <c>assigning</c>, <c>reconciling</c>, <c>stable</c>, <c>dead</c>.</param>
/// <param name="TotalLag">The sum of <see cref="GroupOffset.Lag"/> over the partitions whose log end is known.</param>
/// <param name="PartitionsWithoutLag">Committed partitions whose log end no leader has reported yet (not in the total).</param>
public sealed record GroupDescription(
    string GroupId,
    string State,
    int GroupEpoch,
    int AssignmentEpoch,
    string Assignor,
    IReadOnlyList<GroupMemberDescription> Members,
    IReadOnlyList<GroupOffset> Offsets,
    long MetadataOffset,
    long TotalLag = 0,
    int PartitionsWithoutLag = 0) : IMetadataOffsetAnswer;

/// <summary>One group as <c>GET /v1/groups</c> lists it: what its coordinator holds in memory, with its lag.</summary>
/// <param name="GroupId">The group id.</param>
/// <param name="State">Kafka's consumer group state: <c>empty</c>, <c>assigning</c>, <c>reconciling</c> or <c>stable</c>.</param>
/// <param name="GroupEpoch">The group epoch.</param>
/// <param name="Members">How many members the group has.</param>
/// <param name="Assignor">The group's assignor.</param>
/// <param name="CommittedPartitions">How many partitions have a committed offset.</param>
/// <param name="TotalLag">The sum of the committed partitions' lag whose log end is known.</param>
/// <param name="PartitionsWithoutLag">Committed partitions whose log end no leader has reported yet.</param>
public sealed record GroupListing(
    string GroupId,
    string State,
    int GroupEpoch,
    int Members,
    string Assignor,
    int CommittedPartitions,
    long TotalLag,
    int PartitionsWithoutLag);

/// <summary>The answer to <c>GET /v1/groups</c>: every group of the cluster, gathered from every silo's memory.</summary>
/// <param name="Groups">The groups, ordered by id.</param>
/// <param name="UnreachableSilos">Silos that did not answer in time; their groups are missing from
/// <see cref="Groups"/>. Empty when the list is complete.</param>
public sealed record GroupsResponse(IReadOnlyList<GroupListing> Groups, IReadOnlyList<string> UnreachableSilos);

/// <summary>
/// Where to reset a group's offsets (kafka-consumer-groups --reset-offsets): either explicit offsets per partition, or
/// every partition of <see cref="Topics"/> to its earliest or latest offset as the partitions' leaders last reported
/// them.
/// </summary>
/// <param name="Offsets">One explicit offset per partition; not with <see cref="To"/>.</param>
/// <param name="DryRun">Answers what would be written and writes nothing.</param>
/// <param name="To"><c>earliest</c> (each partition's log start offset) or <c>latest</c> (its log end offset); needs
/// <see cref="Topics"/>.</param>
/// <param name="Topics">The topics whose every partition <see cref="To"/> resets.</param>
public sealed record ResetOffsetsRequest(
    IReadOnlyList<PartitionOffset>? Offsets = null,
    bool DryRun = false,
    string? To = null,
    IReadOnlyList<string>? Topics = null);

/// <summary>The answer to <c>GET /v1/groups/{groupId}/offsets</c>.</summary>
public sealed record GroupOffsetsResponse(string GroupId, IReadOnlyList<GroupOffset> Offsets);

/// <summary>The answer to <c>DELETE /v1/groups/{groupId}/offsets</c>: how many partitions' offsets were deleted.</summary>
public sealed record DeleteGroupOffsetsResponse(string GroupId, int Deleted);

/// <summary>The answer to <c>PUT /v1/groups/{groupId}/offsets</c>: the commit is durable.</summary>
public sealed record CommitOffsetsResponse(string GroupId, int Committed);

/// <summary>The answer to <c>DELETE /v1/groups/{groupId}</c>.</summary>
public sealed record DeleteGroupResponse(string GroupId);

/// <summary>
/// The answer to <c>GET /v1/groups/{groupId}/coordinator</c> (Kafka's FindCoordinator): the silo that owns the group's
/// grain, where its heartbeats, commits and fetches are served without a forwarding hop. Any silo serves every group
/// call; this only says where it costs least. The owner can change whenever the membership view does.
/// </summary>
/// <param name="GroupId">The group asked about.</param>
/// <param name="Url">The public URL of the coordinating silo's API, as it advertises it (<c>Meta:AdvertisedUrl</c>); null
/// while that silo runs a version that does not advertise one (during a rolling upgrade), in which case send the group's
/// calls to any silo.</param>
/// <param name="Silo">The coordinating silo's incarnation, <c>endpoint@generation</c> as <c>GET /v1/cluster</c> shows it.</param>
/// <param name="SiloName">The coordinating silo's name (<c>Meta:Cluster:SiloName</c>), for people.</param>
/// <param name="ViewVersion">The version of the membership view the answer was computed on: silos holding the same
/// version name the same coordinator.</param>
public sealed record GroupCoordinatorResponse(string GroupId, string? Url, string Silo, string SiloName, long ViewVersion);

/// <summary>HTTP headers of the consumer-group API.</summary>
public static class GroupHeaders
{
    /// <summary>
    /// On the answer to a group's heartbeat, offset commit or offset fetch that the answering silo did not serve itself
    /// (it forwarded the call to the group's coordinator): the coordinator's public URL, so a client can send the
    /// group's next calls there directly. Absent when the answering silo is the coordinator.
    /// </summary>
    public const string Coordinator = "Meta-Coordinator";
}
