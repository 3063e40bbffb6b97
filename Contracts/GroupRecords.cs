namespace OrleansMeta.Contracts;

/// <summary>
/// A consumer group's header as the metadata log holds it: the record of type <c>group</c>, key = the group id, that
/// a watch (<c>GET /v1/watch?groups=...</c>) delivers in <see cref="WatchEvent.Record"/>. Written in the same
/// transaction as every change of the group's state that moves one of these fields; members come as
/// <see cref="GroupMemberRecord"/>s, one per member that changed. Committed offsets are not in the log.
/// </summary>
/// <param name="GroupId">The group id.</param>
/// <param name="State">Kafka's consumer group state: <c>empty</c>, <c>assigning</c>, <c>reconciling</c> or <c>stable</c>.</param>
/// <param name="GroupEpoch">Grows with every change of membership, subscriptions or subscribed partitions.</param>
/// <param name="AssignmentEpoch">The group epoch the target assignment was computed at.</param>
/// <param name="Assignor">The assignor that computed it.</param>
/// <param name="Deleted">The group is gone (deleted, or expired with no members and no offsets): drop it and its members.</param>
public sealed record GroupRecord(string GroupId, string State, int GroupEpoch, int AssignmentEpoch, string Assignor, bool Deleted = false);

/// <summary>
/// One member of a consumer group as the metadata log holds it: the record of type <c>group-member</c>, key =
/// <c>groupId/memberId</c> (group ids cannot hold a <c>/</c>). Written when the member joins, leaves, is removed, or any
/// of its fields change (its epoch and state, its assignment, pending revocations, target, subscription).
/// </summary>
/// <param name="GroupId">The group id.</param>
/// <param name="MemberId">The member id.</param>
/// <param name="Member">The member as a group description shows it; null when it left or was removed.</param>
public sealed record GroupMemberRecord(string GroupId, string MemberId, GroupMemberDescription? Member);
