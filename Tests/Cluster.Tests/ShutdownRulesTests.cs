using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Election rules for brokers in controlled shutdown: the reconcile round and the shutdown move agree.</summary>
public sealed class ShutdownRulesTests
{
    private static readonly PartitionState Sole = new(0, [1, 2, 3], [1], 1, 5, 9);

    private static PartitionCommand Command(PartitionCommandKind kind, int? broker = null)
        => new(kind, 1, [1, 2, 3], [1], false, broker, 0);

    [Fact]
    public void A_reconcile_round_leaves_a_shutting_down_leader_the_partitions_no_one_else_can_take_as_the_shutdown_move_does()
    {
        var move = Elections.Decide(Sole, Command(PartitionCommandKind.MoveLeadershipAway, broker: 1));
        Assert.Equal(ErrorCodes.EligibleLeadersNotAvailable, move.ErrorCode);

        // Before: the round took the partition offline while its leader was still alive and serving.
        var round = Elections.Decide(Sole, Command(PartitionCommandKind.Reconcile));
        Assert.Null(round.NewState);
        Assert.Equal(ErrorCodes.ElectionNotNeeded, round.ErrorCode);
    }

    [Fact]
    public void A_reconcile_round_moves_leadership_off_a_shutting_down_leader_when_another_in_sync_replica_is_active()
    {
        var round = Elections.Decide(Sole with { Isr = [1, 3] }, Command(PartitionCommandKind.Reconcile));
        Assert.Equal(3, round.NewState!.Leader);
        Assert.Equal(6, round.NewState.LeaderEpoch);
    }
}
