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
        var brokers = new Brokers(command.LiveBrokers, command.ShuttingDownBrokers);

        switch (command.Kind)
        {
            case PartitionCommandKind.Reconcile:
            {
                var isr = brokers.LiveOf(state.Isr);
                if (isr.Count == 0)
                {
                    // Keep the last in-sync member: it has the newest data, and the partition returns with it.
                    isr = [state.Leader != PartitionState.NoLeader && state.Isr.Contains(state.Leader) ? state.Leader : state.Isr.FirstOrDefault(state.Replicas[0])];
                }

                var leader = state.Leader != PartitionState.NoLeader && brokers.CanLead(state.Leader) && isr.Contains(state.Leader)
                    ? state.Leader
                    : brokers.FirstLeader(state.Replicas, isr);
                if (leader == PartitionState.NoLeader && state.Leader != PartitionState.NoLeader && brokers.IsLive(state.Leader) && isr.Contains(state.Leader))
                {
                    // A leader in controlled shutdown keeps what no one else can take, as MoveLeadershipAway decides.
                    leader = state.Leader;
                }

                var change = "reconciled";
                if (leader == PartitionState.NoLeader && command.AllowUnclean)
                {
                    leader = brokers.FirstLeader(state.Replicas, inSync: null);
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
                    leader = brokers.FirstLeader(state.Replicas, isr, except: broker);
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

                if (!brokers.CanLead(preferred) || !state.Isr.Contains(preferred))
                {
                    return new ElectionDecision(null, "", ErrorCodes.PreferredLeaderNotAvailable,
                        $"The preferred replica {preferred} is {(brokers.CanLead(preferred) ? "not in sync" : "not live")}, so it cannot lead.");
                }

                return Changed(state, preferred, state.Isr, "preferred-election");
            }

            case PartitionCommandKind.Unclean:
            {
                if (state.Leader != PartitionState.NoLeader && brokers.CanLead(state.Leader))
                {
                    return new ElectionDecision(null, "", ErrorCodes.ElectionNotNeeded, $"Broker {state.Leader} leads and is live.");
                }

                var clean = brokers.FirstLeader(state.Replicas, state.Isr);
                if (clean != PartitionState.NoLeader)
                {
                    return Changed(state, clean, brokers.LiveOf(state.Isr), "leader-elected");
                }

                var any = brokers.FirstLeader(state.Replicas, inSync: null);
                return any == PartitionState.NoLeader
                    ? new ElectionDecision(null, "", ErrorCodes.EligibleLeadersNotAvailable, "No replica of this partition is live.")
                    : Changed(state, any, [any], "unclean-election");
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(command), command.Kind, "Unknown command.");
        }
    }

    /// <summary>
    /// Which brokers are live and which may lead, over the command's short lists. A failover decides for tens of
    /// thousands of partitions over a handful of brokers: scanning the lists in loops costs less than building sets,
    /// or the closures and iterators of LINQ, for every decision.
    /// </summary>
    private readonly struct Brokers(IReadOnlyList<int> live, IReadOnlyList<int> shuttingDown)
    {
        public bool IsLive(int broker) => Contains(live, broker);

        public bool CanLead(int broker) => Contains(live, broker) && !Contains(shuttingDown, broker);

        /// <summary>The first replica, in assignment order, that can lead and is in <paramref name="inSync"/> (any
        /// replica when it is null), other than <paramref name="except"/>; <see cref="PartitionState.NoLeader"/> if none.</summary>
        public int FirstLeader(IReadOnlyList<int> replicas, IReadOnlyList<int>? inSync, int except = PartitionState.NoLeader)
        {
            for (var i = 0; i < replicas.Count; i++)
            {
                var replica = replicas[i];
                if (replica != except && (inSync is null || Contains(inSync, replica)) && CanLead(replica))
                {
                    return replica;
                }
            }

            return PartitionState.NoLeader;
        }

        /// <summary>The members of <paramref name="isr"/> that are live, in their order.</summary>
        public List<int> LiveOf(IReadOnlyList<int> isr)
        {
            var kept = new List<int>(isr.Count);
            for (var i = 0; i < isr.Count; i++)
            {
                if (Contains(live, isr[i]))
                {
                    kept.Add(isr[i]);
                }
            }

            return kept;
        }

        private static bool Contains(IReadOnlyList<int> list, int value)
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (list[i] == value)
                {
                    return true;
                }
            }

            return false;
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
