namespace OrleansMeta.Grains.Groups;

/// <summary>
/// Moves one member from its current assignment towards the group's target, one heartbeat at a time (the state machine
/// of Kafka's CurrentAssignmentBuilder). A member never receives a partition another member may still be consuming:
/// the other must first say in a heartbeat that it no longer owns it.
/// </summary>
/// <remarks>
/// <para>The rules, per state of the current assignment in <see cref="Next"/>:</para>
/// <list type="bullet">
/// <item><b>Stable</b> at the target epoch: nothing to do. At an older epoch: reconcile (below).</item>
/// <item><b>UnrevokedPartitions</b>: while the heartbeat still reports (or does not report at all) any partition of
/// <see cref="MemberAssignment.PendingRevocation"/>, nothing changes. Once it reports none of them, they are gone
/// from the member and it reconciles against the latest target.</item>
/// <item><b>UnreleasedPartitions</b>: reconcile again, which hands over whatever other members have released since.</item>
/// </list>
/// <para>Reconciling with target T: Keep = Assigned ∩ T; Revoke = Assigned − T; Wanted = T − Keep, split into the
/// partitions no other member owns (given now) and those it still does (withheld).</para>
/// <list type="bullet">
/// <item>Revoke not empty and the client may still own some of it: UnrevokedPartitions, Assigned = Keep,
/// PendingRevocation = Revoke, epoch unchanged, nothing new given. Giving nothing new until the revocation is done is
/// what lets another member receive the revoked partitions only after this one let go.</item>
/// <item>Otherwise the member moves to the target epoch with Assigned = Keep ∪ given: UnreleasedPartitions if anything
/// was withheld, else Stable.</item>
/// </list>
/// <para><c>ownedByClient == null</c> means the heartbeat did not list its partitions, which acknowledges nothing
/// (the member may still own everything it was ever given).</para>
/// <para>Deliberately different from Kafka: when a member finishes a revocation and the target has meanwhile moved so
/// that it must revoke more, Kafka bumps its epoch by one; here it keeps its epoch. Then a member at epoch e only ever
/// owns partitions of the target of epoch e, so two members owning one partition at one epoch is a bug by
/// definition, which <see cref="AssignmentHistory"/> checks. <see cref="MemberAssignment.PreviousMemberEpoch"/> changes
/// only when the epoch does (Kafka overwrites it with the unchanged epoch).</para>
/// </remarks>
public static class Reconciliation
{
    private static readonly IReadOnlySet<TopicPartition> Nothing = new HashSet<TopicPartition>();

    /// <summary>A member that just joined: epoch 0, owning nothing. Its first <see cref="Next"/> brings it to the
    /// target epoch.</summary>
    public static MemberAssignment Joining { get; } = new(0, 0, MemberState.Stable, Nothing, Nothing);

    /// <summary>
    /// The member's next assignment, or <paramref name="current"/> itself (same instance) when nothing changes.
    /// </summary>
    /// <param name="current">The member's assignment as the group last committed it.</param>
    /// <param name="targetEpoch">The group's target assignment epoch; never older than the member's epoch.</param>
    /// <param name="target">The member's partitions in the target assignment.</param>
    /// <param name="ownedByClient">The partitions this heartbeat says the client owns, or null if it did not say.</param>
    /// <param name="ownedByOther">Whether a partition is owned (assigned or pending revocation) by a member other
    /// than this one, e.g. <see cref="PartitionOwnership.OwnedByOther(string, TopicPartition)"/>.</param>
    public static MemberAssignment Next(
        MemberAssignment current,
        int targetEpoch,
        IReadOnlySet<TopicPartition> target,
        IReadOnlyCollection<TopicPartition>? ownedByClient,
        Func<TopicPartition, bool> ownedByOther)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(ownedByOther);
        if (targetEpoch < current.MemberEpoch)
        {
            throw new ArgumentOutOfRangeException(
                nameof(targetEpoch), targetEpoch, $"The target epoch is older than the member's epoch {current.MemberEpoch}.");
        }

        switch (current.State)
        {
            case MemberState.Stable when current.MemberEpoch == targetEpoch:
                return current;
            case MemberState.UnrevokedPartitions when MayOwnAny(ownedByClient, current.PendingRevocation):
                return current;
            case MemberState.Stable:
            case MemberState.UnrevokedPartitions:
            case MemberState.UnreleasedPartitions:
                // Partitions pending revocation are left out on purpose: reaching here means none is pending, or the
                // client has just acknowledged all of them.
                return Unchanged(current, Reconcile(current, targetEpoch, target, ownedByClient, ownedByOther));
            default:
                throw new ArgumentException($"Unknown member state {current.State}.", nameof(current));
        }
    }

    private static MemberAssignment Reconcile(
        MemberAssignment current,
        int targetEpoch,
        IReadOnlySet<TopicPartition> target,
        IReadOnlyCollection<TopicPartition>? ownedByClient,
        Func<TopicPartition, bool> ownedByOther)
    {
        var keep = new HashSet<TopicPartition>();
        var revoke = new HashSet<TopicPartition>();
        foreach (var tp in current.Assigned)
        {
            (target.Contains(tp) ? keep : revoke).Add(tp);
        }

        if (revoke.Count > 0 && MayOwnAny(ownedByClient, revoke))
        {
            return current with { State = MemberState.UnrevokedPartitions, Assigned = keep, PendingRevocation = revoke };
        }

        var withheld = false;
        var assigned = keep;
        foreach (var tp in target)
        {
            if (keep.Contains(tp))
            {
                continue;
            }

            if (ownedByOther(tp))
            {
                withheld = true;
            }
            else
            {
                assigned.Add(tp);
            }
        }

        return new MemberAssignment(
            targetEpoch,
            targetEpoch != current.MemberEpoch ? current.MemberEpoch : current.PreviousMemberEpoch,
            withheld ? MemberState.UnreleasedPartitions : MemberState.Stable,
            assigned,
            Nothing);
    }

    // Whether the client may still own any of the partitions: an unreported owned set may own everything.
    private static bool MayOwnAny(IReadOnlyCollection<TopicPartition>? ownedByClient, IReadOnlySet<TopicPartition> partitions)
    {
        if (ownedByClient is null)
        {
            return true;
        }

        foreach (var tp in ownedByClient)
        {
            if (partitions.Contains(tp))
            {
                return true;
            }
        }

        return false;
    }

    // The same instance when the outcome equals the input, so callers can tell "nothing to write" by reference.
    private static MemberAssignment Unchanged(MemberAssignment current, MemberAssignment next) =>
        next.MemberEpoch == current.MemberEpoch
        && next.PreviousMemberEpoch == current.PreviousMemberEpoch
        && next.State == current.State
        && next.Assigned.Count == current.Assigned.Count
        && next.PendingRevocation.Count == current.PendingRevocation.Count
        && next.Assigned.SetEquals(current.Assigned)
        && next.PendingRevocation.SetEquals(current.PendingRevocation)
            ? current
            : next;
}
