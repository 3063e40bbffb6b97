namespace OrleansMeta.Chaos.Tests;

/// <summary>The consumer group rules can fail: hand-made histories with a known fault must be flagged, naming the
/// group and partition, and their healthy twins must pass. Times are ticks of the history's clock; the session timeout
/// is 100 ticks and the rebalance timeout 1000.</summary>
public sealed class GroupCheckerTests
{
    private const string Group = "g";
    private static readonly Guid TopicId = Guid.Parse("11111111-2222-3333-4444-555555555555");
    private static long s_id;

    private static GroupCheckInput Input(Dictionary<(string Topic, int Partition), long>? final = null, bool readable = true)
        => new(new Dictionary<string, IReadOnlyDictionary<(string Topic, int Partition), long>?> { [Group] = readable ? final ?? [] : null }, 100, 1000);

    /// <summary>A heartbeat of <paramref name="member"/> invoked at <paramref name="invoked"/> and answered at
    /// <paramref name="completed"/> with <paramref name="partitions"/> (of topic t), or not answered when
    /// <paramref name="outcome"/> says so. Epoch 0 is a join, -1 and -2 a leave.</summary>
    private static Operation Beat(string member, int requestEpoch, long invoked, long completed, int[] partitions, Outcome outcome = Outcome.Ok, string? instance = null)
    {
        var kind = requestEpoch switch { 0 => OperationKind.GroupJoin, < 0 => OperationKind.GroupLeave, _ => OperationKind.GroupHeartbeat };
        var answered = outcome == Outcome.Ok && kind != OperationKind.GroupLeave;
        return new Operation
        {
            Id = Interlocked.Increment(ref s_id), Client = member, Kind = kind, Input = "", InvokedAt = invoked, CompletedAt = completed, Outcome = outcome,
            Heartbeat = new HeartbeatCall(Group, member, requestEpoch, instance)
            {
                AnsweredEpoch = answered ? Math.Max(1, requestEpoch) : null,
                Assigned = answered ? [.. partitions.Select(p => new GroupPartition(TopicId, "t", p))] : null,
            },
        };
    }

    private static Operation Commit(long invoked, long completed, Outcome outcome, params (int Partition, long Offset)[] offsets) => new()
    {
        Id = Interlocked.Increment(ref s_id), Client = "committer", Kind = OperationKind.CommitOffsets, Input = "", InvokedAt = invoked, CompletedAt = completed, Outcome = outcome,
        Commit = new CommitCall(Group, null, -1, [.. offsets.Select(o => new CommittedOffset("t", o.Partition, o.Offset))]),
    };

    private static IReadOnlyList<string> OwnerViolations(params Operation[] history)
    {
        var result = GroupChecker.OnePartitionOwner(history, Input());
        Assert.True(result.Checked > 0, "the rule looked at no ownership");
        return result.Violations;
    }

    private static IReadOnlyList<string> CommitViolations(Dictionary<(string Topic, int Partition), long>? final, params Operation[] history)
        => GroupChecker.AcknowledgedCommitsReadable(history, Input(final, readable: final is not null)).Violations;

    [Fact]
    public void A_partition_handed_over_after_the_revocation_is_acknowledged_has_one_owner()
        => Assert.Empty(OwnerViolations(
            Beat("m1", 0, 0, 10, [0, 1]),
            Beat("m2", 0, 50, 60, []),
            Beat("m1", 1, 100, 110, [0]), // told to give up partition 1
            Beat("m2", 1, 120, 130, []), // withheld: m1 has not acknowledged yet
            Beat("m1", 1, 200, 210, [0]), // acknowledges (no longer lists 1)
            Beat("m2", 1, 220, 230, [1])));

    [Fact]
    public void A_partition_given_to_a_second_member_before_the_first_was_told_to_give_it_up_is_a_violation()
    {
        var violation = Assert.Single(OwnerViolations(
            Beat("m1", 0, 0, 10, [0, 1]),
            Beat("m2", 0, 50, 60, [1]),
            Beat("m1", 1, 100, 110, [0])));
        Assert.Contains("group g: partition t/1", violation, StringComparison.Ordinal);
        Assert.Contains("had two owners at once", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_partition_of_a_member_silent_for_its_session_may_go_to_another()
        => Assert.Empty(OwnerViolations(
            Beat("m1", 0, 0, 10, [0]), // then silent: removed no sooner than 0 + 100
            Beat("m2", 0, 150, 160, [0])));

    [Fact]
    public void A_partition_of_a_silent_member_given_away_before_its_session_ends_is_a_violation()
    {
        var violation = Assert.Single(OwnerViolations(
            Beat("m1", 0, 0, 10, [0]),
            Beat("m2", 0, 50, 60, [0])));
        Assert.Contains("partition t/0", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_call_whose_answer_was_lost_may_have_released_the_partition()
        => Assert.Empty(OwnerViolations(
            Beat("m1", 0, 0, 10, [0]),
            Beat("m1", 1, 40, 90, [], Outcome.Unknown),
            Beat("m2", 0, 50, 60, [0])));

    [Fact]
    public void Two_answers_in_a_row_that_list_a_partition_prove_ownership_in_between()
    {
        // m2's ownership falls in the gap between m1's two calls: only joining them shows the overlap.
        var violation = Assert.Single(OwnerViolations(
            Beat("m1", 0, 0, 10, [0]),
            Beat("m1", 1, 100, 110, [0]),
            Beat("m2", 0, 101, 103, [0]),
            Beat("m2", -1, 105, 106, [])));
        Assert.Contains("member m1", violation, StringComparison.Ordinal);
        Assert.Contains("member m2", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rejoin_between_two_answers_breaks_the_proof_of_ownership_in_between()
        => Assert.Empty(OwnerViolations(
            Beat("m1", 0, 0, 10, [0]),
            Beat("m1", 0, 100, 110, [0]), // epoch 0: starts over, so it may have let go and taken 0 again
            Beat("m2", 0, 101, 103, [0]),
            Beat("m2", -1, 105, 106, [])));

    [Fact]
    public void A_static_member_returning_under_a_new_member_id_takes_its_partitions_after_leaving()
        => Assert.Empty(OwnerViolations(
            Beat("m1", 0, 0, 10, [0, 1], instance: "i"),
            Beat("m1", -2, 50, 51, [], instance: "i"),
            Beat("m2", 0, 60, 61, [0, 1], instance: "i")));

    [Fact]
    public void A_static_member_given_its_partitions_while_its_previous_incarnation_still_holds_them_is_a_violation()
        => Assert.Equal(2, OwnerViolations(
            Beat("m1", 0, 0, 10, [0, 1], instance: "i"),
            Beat("m2", 0, 20, 21, [0, 1], instance: "i"),
            Beat("m1", -2, 50, 51, [], instance: "i")).Count);

    [Fact]
    public void The_last_acknowledged_commit_or_a_later_unknown_one_may_be_read()
    {
        Operation[] history = [Commit(0, 10, Outcome.Ok, (0, 1)), Commit(20, 30, Outcome.Ok, (0, 2)), Commit(40, 50, Outcome.Unknown, (0, 3))];
        Assert.Empty(CommitViolations(new() { [("t", 0)] = 2 }, history));
        Assert.Empty(CommitViolations(new() { [("t", 0)] = 3 }, history));
    }

    [Fact]
    public void Reading_an_older_value_than_the_last_acknowledged_commit_is_a_lost_commit()
    {
        var violation = Assert.Single(CommitViolations(new() { [("t", 0)] = 2 },
            Commit(0, 10, Outcome.Ok, (0, 1)), Commit(20, 30, Outcome.Ok, (0, 2)), Commit(40, 50, Outcome.Ok, (0, 3))));
        Assert.Contains("group g: partition t/0: acknowledged commit lost: reads 2", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void An_acknowledged_commit_with_nothing_readable_is_a_lost_commit()
    {
        var violation = Assert.Single(CommitViolations([], Commit(0, 10, Outcome.Ok, (0, 1))));
        Assert.Contains("acknowledged commit lost: nothing is readable", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void An_older_commit_with_an_unknown_outcome_landing_after_a_later_acknowledged_one_is_a_lost_commit()
    {
        // The client gave up on 2 at 20 and sent 3 at 30, acknowledged: 2 overwriting 3 loses an acknowledged commit.
        var violation = Assert.Single(CommitViolations(new() { [("t", 0)] = 2 },
            Commit(10, 20, Outcome.Unknown, (0, 2)), Commit(30, 40, Outcome.Ok, (0, 3))));
        Assert.Contains("acknowledged commit lost", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void Of_two_overlapping_acknowledged_commits_either_may_be_read()
        => Assert.Empty(CommitViolations(new() { [("t", 0)] = 2 },
            Commit(10, 40, Outcome.Ok, (0, 2)), Commit(20, 30, Outcome.Ok, (0, 3))));

    [Fact]
    public void A_value_only_a_refused_commit_sent_is_a_violation()
    {
        var violation = Assert.Single(CommitViolations(new() { [("t", 0)] = 2 },
            Commit(0, 10, Outcome.Ok, (0, 1)), Commit(20, 30, Outcome.Refused, (0, 2))));
        Assert.Contains("which only a refused commit sent", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_value_nobody_sent_is_a_violation()
    {
        var violations = CommitViolations(new() { [("t", 0)] = 7, [("t", 5)] = 1 }, Commit(0, 10, Outcome.Ok, (0, 1)));
        Assert.Contains(violations, v => v.Contains("partition t/0: reads 7, which no commit sent", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.Contains("partition t/5: reads 1, but no commit of it was sent", StringComparison.Ordinal));
    }

    [Fact]
    public void A_group_whose_offsets_cannot_be_read_after_acknowledged_commits_is_a_violation()
        => Assert.Contains("could not be read", Assert.Single(CommitViolations(null, Commit(0, 10, Outcome.Ok, (0, 1)))), StringComparison.Ordinal);

    [Fact]
    public void The_group_rules_join_the_others_when_the_run_gives_their_input()
    {
        var names = HistoryChecker.Check([Commit(0, 10, Outcome.Ok, (0, 1))], MetadataLog.Replay([], 0), new Dictionary<string, OrleansMeta.Contracts.MetadataResponse>(),
            Input(new() { [("t", 0)] = 1 })).Select(i => i.Name).ToList();
        Assert.Contains(GroupChecker.OneOwnerRule, names);
        Assert.Contains(GroupChecker.CommitsReadableRule, names);
    }
}
