namespace OrleansMeta.Grains.Groups;

/// <summary>
/// KIP-848's uniform assignor: spreads partitions so that member counts differ as little as subscriptions allow, and
/// keeps every member's previous target where balance does not need the partition elsewhere (balance first, then
/// stickiness, as Kafka's).
/// </summary>
/// <remarks>
/// <para>First, every partition of the previous target stays with its member if the member still subscribes to the
/// topic and the partition still exists (a partition claimed twice stays with the first claimant in member-id order).
/// Then:</para>
/// <list type="bullet">
/// <item>Identical subscriptions: each member gets a quota, <c>P / N</c> or one more, the extra going to the members
/// that kept the most. A member over its quota gives up its highest partitions; the free partitions go, in order, to
/// the members under quota. Counts end within one of each other and nothing moves that balance does not require: a
/// member joining only receives, a member leaving only gives.</item>
/// <item>Differing subscriptions: free partitions go to the least loaded subscriber of their topic, then single
/// partitions move from a topic's most loaded owner to its least loaded subscriber while that improves balance, then
/// chains of such moves (member A gives B a partition of a topic they share, B gives C one of another, ...) while one
/// leads from a member to another with two partitions fewer. At the end no chain can even counts out further, which
/// is the best balance the subscriptions allow (the max-flow optimum). Kafka's heterogeneous builder stops at the
/// single moves.</item>
/// </list>
/// <para>Ties go to the lower member id and the lower topic id, so the result does not depend on input order or
/// hashing. See <see cref="UniformAssignment"/> for the costs.</para>
/// </remarks>
public sealed class UniformAssignor : IPartitionAssignor
{
    /// <summary>The name a group chooses this assignor by.</summary>
    public const string AssignorName = "uniform";

    /// <inheritdoc/>
    public string Name => AssignorName;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Assign(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> currentTarget)
    {
        ArgumentNullException.ThrowIfNull(currentTarget);
        var assignment = new UniformAssignment(AssignorInput.Create(members, topics, AssignorInput.ByMemberId));
        assignment.Keep(currentTarget);
        if (assignment.IsHomogeneous)
        {
            assignment.AssignByQuota();
        }
        else
        {
            assignment.FillLeastLoaded();
            assignment.Balance();
        }

        return assignment.Result();
    }
}
