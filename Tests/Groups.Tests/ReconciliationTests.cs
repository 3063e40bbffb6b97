using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

public sealed class ReconciliationTests
{
    private static readonly Guid Topic = Scenario.TopicId(0);
    private static readonly TopicPartition P0 = new(Topic, 0);
    private static readonly TopicPartition P1 = new(Topic, 1);

    private static IReadOnlySet<TopicPartition> Set(params TopicPartition[] partitions) => partitions.ToHashSet();

    [Fact]
    public void A_joining_member_gets_its_free_target_partitions_and_is_stable_at_the_target_epoch()
    {
        var next = Reconciliation.Next(Reconciliation.Joining, 3, Set(P0, P1), null, _ => false);

        Assert.Equal(new MemberAssignment(3, 0, MemberState.Stable, next.Assigned, next.PendingRevocation), next);
        Assert.Equal(Set(P0, P1), next.Assigned);
        Assert.Empty(next.PendingRevocation);
    }

    [Fact]
    public void A_revocation_must_be_acknowledged_before_the_partition_is_handed_to_another_member()
    {
        var ownership = new PartitionOwnership();
        var a = Reconciliation.Next(Reconciliation.Joining, 1, Set(P0, P1), null, ownership.OwnedByOtherThan("a"));
        ownership.Set("a", a);
        var b = Reconciliation.Joining;

        // Epoch 2 moves P1 from a to b.
        b = Reconciliation.Next(b, 2, Set(P1), [], ownership.OwnedByOtherThan("b"));
        ownership.Set("b", b);
        Assert.Equal(MemberState.UnreleasedPartitions, b.State);
        Assert.Equal(2, b.MemberEpoch);
        Assert.Empty(b.Assigned);

        a = Reconciliation.Next(a, 2, Set(P0), [P0, P1], ownership.OwnedByOtherThan("a"));
        ownership.Set("a", a);
        Assert.Equal(MemberState.UnrevokedPartitions, a.State);
        Assert.Equal(1, a.MemberEpoch);
        Assert.Equal(Set(P0), a.Assigned);
        Assert.Equal(Set(P1), a.PendingRevocation);

        // Not acknowledged yet: a still reports P1, or reports nothing; b keeps waiting.
        Assert.Same(a, Reconciliation.Next(a, 2, Set(P0), [P0, P1], ownership.OwnedByOtherThan("a")));
        Assert.Same(a, Reconciliation.Next(a, 2, Set(P0), null, ownership.OwnedByOtherThan("a")));
        Assert.Same(b, Reconciliation.Next(b, 2, Set(P1), [], ownership.OwnedByOtherThan("b")));
        Assert.Equal("a", ownership.OwnerOf(P1));

        // a acknowledges: it reaches epoch 2, P1 is free, and b gets it.
        a = Reconciliation.Next(a, 2, Set(P0), [P0], ownership.OwnedByOtherThan("a"));
        ownership.Set("a", a);
        Assert.Equal(new MemberAssignment(2, 1, MemberState.Stable, a.Assigned, a.PendingRevocation), a);
        Assert.Null(ownership.OwnerOf(P1));

        b = Reconciliation.Next(b, 2, Set(P1), [], ownership.OwnedByOtherThan("b"));
        ownership.Set("b", b);
        Assert.Equal(MemberState.Stable, b.State);
        Assert.Equal(Set(P1), b.Assigned);
    }

    [Fact]
    public void A_member_whose_heartbeat_already_lacks_the_revoked_partitions_moves_straight_to_the_target_epoch()
    {
        var a = new MemberAssignment(1, 0, MemberState.Stable, Set(P0, P1), Set());

        var next = Reconciliation.Next(a, 2, Set(P0), [P0], _ => false);

        Assert.Equal(MemberState.Stable, next.State);
        Assert.Equal(2, next.MemberEpoch);
        Assert.Equal(1, next.PreviousMemberEpoch);
        Assert.Equal(Set(P0), next.Assigned);
    }

    [Fact]
    public void A_stable_member_at_the_target_epoch_is_returned_unchanged()
    {
        var a = new MemberAssignment(4, 3, MemberState.Stable, Set(P0), Set());

        Assert.Same(a, Reconciliation.Next(a, 4, Set(P0, P1), null, _ => false));
    }

    [Fact]
    public void A_member_that_must_revoke_more_after_acknowledging_keeps_its_epoch_and_gets_nothing_new()
    {
        var a = new MemberAssignment(1, 0, MemberState.UnrevokedPartitions, Set(P0), Set(P1));

        // Acknowledged P1, but the target (epoch 3) has moved P0 away too and offers P1 back.
        var next = Reconciliation.Next(a, 3, Set(P1), [P0], _ => false);

        Assert.Equal(new MemberAssignment(1, 0, MemberState.UnrevokedPartitions, next.Assigned, next.PendingRevocation), next);
        Assert.Empty(next.Assigned);
        Assert.Equal(Set(P0), next.PendingRevocation);
    }

    [Fact]
    public void A_target_epoch_older_than_the_members_is_refused()
    {
        var a = new MemberAssignment(4, 3, MemberState.Stable, Set(P0), Set());

        Assert.Throws<ArgumentOutOfRangeException>(() => Reconciliation.Next(a, 3, Set(P0), null, _ => false));
    }
}
