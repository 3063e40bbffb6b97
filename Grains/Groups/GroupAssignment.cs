namespace OrleansMeta.Grains.Groups;

/// <summary>One partition of a topic in a consumer group's assignment, named by topic id.</summary>
public readonly record struct TopicPartition(Guid TopicId, int Partition) : IComparable<TopicPartition>
{
    public int CompareTo(TopicPartition other)
    {
        var byTopic = TopicId.CompareTo(other.TopicId);
        return byTopic != 0 ? byTopic : Partition.CompareTo(other.Partition);
    }
}

/// <summary>What an assignor sees of one member: who it is and the topics it subscribes to (already resolved from
/// names and regular expressions against the metadata image).</summary>
public sealed record AssignorMember(string MemberId, string? InstanceId, string? RackId, IReadOnlySet<Guid> SubscribedTopicIds);

/// <summary>What an assignor sees of one subscribed topic.</summary>
public sealed record AssignorTopic(Guid TopicId, string Name, int PartitionCount);

/// <summary>
/// A server-side assignor (KIP-848): computes the group's target assignment. Deterministic: the same input gives the
/// same output on every silo. Every partition of a topic that at least one member subscribes to goes to exactly one
/// member subscribed to it; a member gets only partitions of topics it subscribes to.
/// </summary>
public interface IPartitionAssignor
{
    /// <summary>The name a group chooses it by (<c>uniform</c>, <c>range</c>).</summary>
    string Name { get; }

    /// <summary>The target assignment of every member in <paramref name="members"/> (members with nothing map to an
    /// empty set). <paramref name="currentTarget"/> is the previous target, which a sticky assignor keeps where it can.</summary>
    IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Assign(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> currentTarget);
}

/// <summary>Where a member stands in reconciling its assignment with the group's target (Kafka's MemberState).</summary>
public enum MemberState
{
    /// <summary>The member owns its whole target at the target epoch.</summary>
    Stable,

    /// <summary>The member must give up <see cref="MemberAssignment.PendingRevocation"/> and say so in a heartbeat
    /// before it moves to the new epoch.</summary>
    UnrevokedPartitions,

    /// <summary>The member is at the target epoch but some of its target partitions are still owned by other members
    /// that have not revoked them yet.</summary>
    UnreleasedPartitions,
}

/// <summary>A member's reconciliation state: its epoch, what it owns now and what it must give up. A partition in
/// <see cref="Assigned"/> or <see cref="PendingRevocation"/> is owned by this member and by no other.</summary>
public sealed record MemberAssignment(
    int MemberEpoch,
    int PreviousMemberEpoch,
    MemberState State,
    IReadOnlySet<TopicPartition> Assigned,
    IReadOnlySet<TopicPartition> PendingRevocation);
