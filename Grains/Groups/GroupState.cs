using System.Text.Json.Serialization;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// A consumer group's persisted state: membership, subscriptions, epochs and assignments. Written only when one of
/// them changes (a join, a leave, a removal, a subscription change, a new target, a reconciliation step); heartbeats
/// that change nothing stay in memory. Stored in the compact form of <see cref="GroupStateJsonConverter"/>, which also
/// reads the older, longer form.
/// </summary>
[JsonConverter(typeof(GroupStateJsonConverter))]
public sealed class GroupState
{
    /// <summary>Grows with every change of membership, subscriptions or subscribed topics' partitions.</summary>
    public int GroupEpoch { get; set; }

    /// <summary>The group epoch the members' targets were computed at.</summary>
    public int AssignmentEpoch { get; set; }

    /// <summary>The assignor that computed the targets.</summary>
    public string Assignor { get; set; } = "uniform";

    /// <summary>Subscribed topics and their partition counts when the targets were computed.</summary>
    public Dictionary<Guid, int> SubscribedTopics { get; set; } = [];

    public Dictionary<string, GroupMember> Members { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One member as persisted.</summary>
public sealed class GroupMember
{
    public string MemberId { get; set; } = "";

    public string? InstanceId { get; set; }

    public string? RackId { get; set; }

    public string? ClientId { get; set; }

    public List<string> SubscribedTopicNames { get; set; } = [];

    public string? SubscribedTopicRegex { get; set; }

    public string? ServerAssignor { get; set; }

    public int MemberEpoch { get; set; }

    public int PreviousMemberEpoch { get; set; }

    public MemberState State { get; set; }

    public List<TopicPartition> Assigned { get; set; } = [];

    public List<TopicPartition> PendingRevocation { get; set; } = [];

    /// <summary>This member's part of the group's target assignment at <see cref="GroupState.AssignmentEpoch"/>.</summary>
    public List<TopicPartition> Target { get; set; } = [];

    /// <summary>A static member that left for a moment (epoch -2): the epoch it had, restored when it returns.</summary>
    public int? LeftWithEpoch { get; set; }

    public MemberAssignment ToAssignment() => new(MemberEpoch, PreviousMemberEpoch, State, Assigned.ToHashSet(), PendingRevocation.ToHashSet());

    public void Apply(MemberAssignment next)
    {
        MemberEpoch = next.MemberEpoch;
        PreviousMemberEpoch = next.PreviousMemberEpoch;
        State = next.State;
        Assigned = [.. next.Assigned.Order()];
        PendingRevocation = [.. next.PendingRevocation.Order()];
    }
}
