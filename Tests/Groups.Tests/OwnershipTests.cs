using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

public sealed class OwnershipTests
{
    private static readonly Guid Topic = Scenario.TopicId(0);
    private static readonly TopicPartition P0 = new(Topic, 0);
    private static readonly TopicPartition P1 = new(Topic, 1);
    private static readonly TopicPartition P2 = new(Topic, 2);

    private static MemberAssignment Owning(TopicPartition[] assigned, params TopicPartition[] pending) =>
        new(1, 0, pending.Length > 0 ? MemberState.UnrevokedPartitions : MemberState.Stable, assigned.ToHashSet(), pending.ToHashSet());

    [Fact]
    public void Assigned_and_pending_revocation_partitions_are_owned_until_the_member_changes_or_leaves()
    {
        var ownership = new PartitionOwnership();
        ownership.Set("a", Owning([P0], P1));

        Assert.Equal("a", ownership.OwnerOf(P0));
        Assert.Equal("a", ownership.OwnerOf(P1));
        Assert.True(ownership.OwnedByOther("b", P1));
        Assert.False(ownership.OwnedByOther("a", P1));

        ownership.Set("a", Owning([P0]));
        Assert.Null(ownership.OwnerOf(P1));

        ownership.Remove("a");
        Assert.Equal(0, ownership.Count);
    }

    [Fact]
    public void A_second_owner_is_refused_and_nothing_changes()
    {
        var ownership = new PartitionOwnership();
        ownership.Set("a", Owning([P0, P1]));
        ownership.Set("b", Owning([P2]));

        var error = Assert.Throws<InvalidOperationException>(() => ownership.Set("b", Owning([P1, P2])));

        Assert.Contains("'b'", error.Message, StringComparison.Ordinal);
        Assert.Contains("owned by 'a'", error.Message, StringComparison.Ordinal);
        Assert.Equal("a", ownership.OwnerOf(P1));
        Assert.Equal(new HashSet<TopicPartition> { P2 }, ownership.OwnedBy("b"));
    }

    [Fact]
    public void Rebuilding_from_member_assignments_refuses_a_partition_with_two_owners()
    {
        var members = new Dictionary<string, MemberAssignment> { ["a"] = Owning([P0]), ["b"] = Owning([P1], P0) };

        Assert.Throws<InvalidOperationException>(() => PartitionOwnership.From(members));
    }

    [Fact]
    public void The_history_reports_a_partition_owned_by_two_members_at_once()
    {
        var history = new AssignmentHistory(checkSameEpoch: false);
        history.Observe("a", 1, [P0, P1]);
        history.Observe("b", 2, [P1]);

        var violation = Assert.Single(history.Violations);
        Assert.Contains($"partition {Topic}-1 owned by member 'b' at epoch 2 while member 'a' still owns it at epoch 1", violation, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(history.ThrowIfViolated);
    }

    [Fact]
    public void The_history_accepts_a_handover_after_the_release()
    {
        var history = new AssignmentHistory();
        history.Observe("a", 1, [P0, P1]);
        history.Observe("a", 1, [P0]);
        history.Observe("b", 2, [P1]);
        history.Observe("c", 3, [P2]);
        history.Leave("c");
        history.Observe("a", 4, [P0, P2]);

        Assert.Empty(history.Violations);
    }

    [Fact]
    public void The_history_reports_two_owners_at_one_epoch_even_at_different_times()
    {
        var history = new AssignmentHistory();
        history.Observe("a", 2, [P0]);
        history.Observe("a", 3, []);
        history.Observe("b", 2, [P0]);

        Assert.Contains("owned at epoch 2 by member 'b'", Assert.Single(history.Violations), StringComparison.Ordinal);
    }

    [Fact]
    public void The_history_reports_an_epoch_going_backwards()
    {
        var history = new AssignmentHistory();
        history.Observe("a", 3, [P0]);
        history.Observe("a", 2, [P0]);

        Assert.Contains("went back from epoch 3", Assert.Single(history.Violations), StringComparison.Ordinal);
    }

    [Fact]
    public void Assignors_are_found_by_name_and_an_unknown_name_lists_the_valid_ones()
    {
        Assert.Equal("uniform", PartitionAssignors.Default.Name);
        Assert.Equal(["uniform", "range"], PartitionAssignors.Names);
        Assert.IsType<RangeAssignor>(PartitionAssignors.Get("range"));

        var error = Assert.Throws<ArgumentException>(() => PartitionAssignors.Get("sticky"));
        Assert.Contains("uniform, range", error.Message, StringComparison.Ordinal);
    }
}
