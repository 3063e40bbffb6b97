using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The pure election and assignment rules, case by case.</summary>
public sealed class RulesTests
{
    private static readonly PartitionState Healthy = new(0, [1, 2, 3], [1, 2, 3], 1, 5, 9);

    private static PartitionCommand Command(PartitionCommandKind kind, int[] live, bool unclean = false, int? broker = null, int[]? shuttingDown = null)
        => new(kind, 1, live, shuttingDown ?? [], unclean, broker, 0);

    [Fact]
    public void A_dead_leader_is_replaced_by_the_first_live_in_sync_replica_with_a_higher_leader_epoch()
    {
        var decision = Elections.Decide(Healthy, Command(PartitionCommandKind.Reconcile, [2, 3]));
        Assert.Equal(2, decision.NewState!.Leader);
        Assert.Equal([2, 3], decision.NewState.Isr);
        Assert.Equal(6, decision.NewState.LeaderEpoch);
        Assert.Equal(10, decision.NewState.PartitionEpoch);
    }

    [Fact]
    public void With_no_live_in_sync_replica_the_partition_goes_offline_keeping_its_last_isr_member_unless_unclean_is_allowed()
    {
        var lonely = Healthy with { Isr = [1] };
        var offline = Elections.Decide(lonely, Command(PartitionCommandKind.Reconcile, [2, 3]));
        Assert.Equal(PartitionState.NoLeader, offline.NewState!.Leader);
        Assert.Equal([1], offline.NewState.Isr);
        Assert.Equal("offline", offline.Change);

        var unclean = Elections.Decide(lonely, Command(PartitionCommandKind.Reconcile, [2, 3], unclean: true));
        Assert.Equal(2, unclean.NewState!.Leader);
        Assert.Equal([2], unclean.NewState.Isr);
        Assert.Equal("unclean-election", unclean.Change);
    }

    [Fact]
    public void A_requested_unclean_election_prefers_a_clean_leader_and_refuses_when_nothing_is_live()
    {
        var offline = Healthy with { Leader = PartitionState.NoLeader, Isr = [1] };
        Assert.Equal(1, Elections.Decide(offline, Command(PartitionCommandKind.Unclean, [1, 3])).NewState!.Leader);
        Assert.Equal(3, Elections.Decide(offline, Command(PartitionCommandKind.Unclean, [3])).NewState!.Leader);
        Assert.Equal(ErrorCodes.EligibleLeadersNotAvailable, Elections.Decide(offline, Command(PartitionCommandKind.Unclean, [])).ErrorCode);
        Assert.Equal(ErrorCodes.ElectionNotNeeded, Elections.Decide(Healthy, Command(PartitionCommandKind.Unclean, [1, 2, 3])).ErrorCode);
    }

    [Fact]
    public void Preferred_elections_need_the_preferred_replica_live_and_in_sync()
    {
        var moved = Healthy with { Leader = 2, LeaderEpoch = 6 };
        Assert.Equal(1, Elections.Decide(moved, Command(PartitionCommandKind.Preferred, [1, 2, 3])).NewState!.Leader);
        Assert.Equal(ErrorCodes.PreferredLeaderNotAvailable, Elections.Decide(moved with { Isr = [2, 3] }, Command(PartitionCommandKind.Preferred, [1, 2, 3])).ErrorCode);
        Assert.Equal(ErrorCodes.PreferredLeaderNotAvailable, Elections.Decide(moved, Command(PartitionCommandKind.Preferred, [2, 3])).ErrorCode);
        Assert.Equal(ErrorCodes.ElectionNotNeeded, Elections.Decide(Healthy, Command(PartitionCommandKind.Preferred, [1, 2, 3])).ErrorCode);
    }

    [Fact]
    public void Controlled_shutdown_moves_leadership_to_another_in_sync_replica_and_never_to_a_broker_shutting_down()
    {
        var decision = Elections.Decide(Healthy, Command(PartitionCommandKind.MoveLeadershipAway, [1, 2, 3], broker: 1, shuttingDown: [1, 2]));
        Assert.Equal(3, decision.NewState!.Leader);
        Assert.DoesNotContain(1, decision.NewState.Isr);

        var stuck = Elections.Decide(Healthy with { Isr = [1] }, Command(PartitionCommandKind.MoveLeadershipAway, [1, 2, 3], broker: 1, shuttingDown: [1]));
        Assert.Null(stuck.NewState);
        Assert.Equal(ErrorCodes.EligibleLeadersNotAvailable, stuck.ErrorCode);
    }

    [Fact]
    public void Replicas_spread_over_racks_and_preferred_leaders_spread_over_brokers()
    {
        var brokers = new[] { (1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c") }
            .Select(b => new BrokerImage(new BrokerRecord(b.Item1, Guid.NewGuid(), 1, [], b.Item2, BrokerStates.Unfenced, 1, "unfenced"), 1))
            .ToList();
        var racks = brokers.ToDictionary(b => b.Record.BrokerId, b => b.Record.Rack);
        var assignment = ReplicaAssignment.Assign("spread", 0, 60, 3, brokers);

        Assert.All(assignment, replicas =>
        {
            Assert.Equal(3, replicas.Distinct().Count());
            Assert.Equal(3, replicas.Select(b => racks[b]).Distinct().Count());
        });
        Assert.All(assignment.GroupBy(r => r[0]), g => Assert.Equal(10, g.Count()));
        Assert.All(assignment.SelectMany(r => r).GroupBy(b => b), g => Assert.Equal(30, g.Count()));
        Assert.Equal(assignment, ReplicaAssignment.Assign("spread", 0, 60, 3, brokers));
    }
}
