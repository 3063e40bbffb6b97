using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>The outcome of applying a controller command to a partition: a new state, or why nothing changes.</summary>
public sealed record ElectionDecision(PartitionState? NewState, string Change, string? ErrorCode, string? Message);

/// <summary>
/// Leader election and ISR rules, as pure functions of a partition's current state and broker liveness (KRaft's
/// semantics): clean elections pick the first live in-sync replica in assignment order; unclean elections any live
/// replica, only when asked or allowed; an ISR never becomes empty (the last member stays, so that the partition comes
/// back when it does); the leader epoch grows on every leader change and the partition epoch on every change.
/// </summary>
public static class Elections
{
    public static ElectionDecision Decide(PartitionState state, PartitionCommand command)
    {
        // A failover decides for tens of thousands of partitions over a handful of brokers: scanning the short lists
        // costs less than building sets for every decision.
        var live = command.LiveBrokers;
        var shuttingDown = command.ShuttingDownBrokers;
        bool CanLead(int broker) => live.Contains(broker) && !shuttingDown.Contains(broker);

        switch (command.Kind)
        {
            case PartitionCommandKind.Reconcile:
            {
                var isr = state.Isr.Where(live.Contains).ToList();
                if (isr.Count == 0)
                {
                    // Keep the last in-sync member: it has the newest data, and the partition returns with it.
                    isr = [state.Leader != PartitionState.NoLeader && state.Isr.Contains(state.Leader) ? state.Leader : state.Isr.FirstOrDefault(state.Replicas[0])];
                }

                var leader = state.Leader != PartitionState.NoLeader && CanLead(state.Leader) && isr.Contains(state.Leader)
                    ? state.Leader
                    : state.Replicas.FirstOrDefault(b => isr.Contains(b) && CanLead(b), PartitionState.NoLeader);
                if (leader == PartitionState.NoLeader && state.Leader != PartitionState.NoLeader && live.Contains(state.Leader) && isr.Contains(state.Leader))
                {
                    // A leader in controlled shutdown keeps what no one else can take, as MoveLeadershipAway decides.
                    leader = state.Leader;
                }

                var change = "reconciled";
                if (leader == PartitionState.NoLeader && command.AllowUnclean)
                {
                    leader = state.Replicas.FirstOrDefault(CanLead, PartitionState.NoLeader);
                    if (leader != PartitionState.NoLeader)
                    {
                        isr = [leader];
                        change = "unclean-election";
                    }
                }

                return Changed(state, leader, isr, change);
            }

            case PartitionCommandKind.MoveLeadershipAway:
            {
                var broker = command.Broker ?? throw new ArgumentException("MoveLeadershipAway needs a broker.", nameof(command));
                var isr = state.Isr.Count > 1 ? state.Isr.Where(b => b != broker).ToList() : [.. state.Isr];
                var leader = state.Leader;
                if (leader == broker)
                {
                    leader = state.Replicas.FirstOrDefault(b => b != broker && isr.Contains(b) && CanLead(b), PartitionState.NoLeader);
                    if (leader == PartitionState.NoLeader)
                    {
                        return new ElectionDecision(null, "", ErrorCodes.EligibleLeadersNotAvailable,
                            $"No other live in-sync replica can take over from broker {broker}; it keeps leading until one catches up.");
                    }
                }

                return Changed(state, leader, isr, "controlled-shutdown");
            }

            case PartitionCommandKind.Preferred:
            {
                var preferred = state.Replicas[0];
                if (state.Leader == preferred)
                {
                    return new ElectionDecision(null, "", ErrorCodes.ElectionNotNeeded, $"The preferred replica {preferred} already leads.");
                }

                if (!CanLead(preferred) || !state.Isr.Contains(preferred))
                {
                    return new ElectionDecision(null, "", ErrorCodes.PreferredLeaderNotAvailable,
                        $"The preferred replica {preferred} is {(CanLead(preferred) ? "not in sync" : "not live")}, so it cannot lead.");
                }

                return Changed(state, preferred, state.Isr, "preferred-election");
            }

            case PartitionCommandKind.Unclean:
            {
                if (state.Leader != PartitionState.NoLeader && CanLead(state.Leader))
                {
                    return new ElectionDecision(null, "", ErrorCodes.ElectionNotNeeded, $"Broker {state.Leader} leads and is live.");
                }

                var clean = state.Replicas.FirstOrDefault(b => state.Isr.Contains(b) && CanLead(b), PartitionState.NoLeader);
                if (clean != PartitionState.NoLeader)
                {
                    return Changed(state, clean, state.Isr.Where(live.Contains).ToList(), "leader-elected");
                }

                var any = state.Replicas.FirstOrDefault(CanLead, PartitionState.NoLeader);
                return any == PartitionState.NoLeader
                    ? new ElectionDecision(null, "", ErrorCodes.EligibleLeadersNotAvailable, "No replica of this partition is live.")
                    : Changed(state, any, [any], "unclean-election");
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(command), command.Kind, "Unknown command.");
        }
    }

    private static ElectionDecision Changed(PartitionState state, int leader, IReadOnlyList<int> isr, string change)
    {
        var leaderChanged = leader != state.Leader;
        if (!leaderChanged && isr.SequenceEqual(state.Isr))
        {
            return new ElectionDecision(null, "", ErrorCodes.ElectionNotNeeded, "Nothing to change.");
        }

        return new ElectionDecision(
            state with
            {
                Leader = leader,
                Isr = [.. isr],
                LeaderEpoch = leaderChanged ? state.LeaderEpoch + 1 : state.LeaderEpoch,
                PartitionEpoch = state.PartitionEpoch + 1,
            },
            leaderChanged && leader == PartitionState.NoLeader ? "offline" : change,
            null,
            null);
    }
}
