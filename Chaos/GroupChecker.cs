using System.Diagnostics;

namespace OrleansMeta.Chaos;

/// <summary>What the consumer group rules need besides the history.</summary>
/// <param name="FinalOffsets">Each group's committed offsets read after the faults were healed, by (topic, partition);
/// null for a group whose offsets could not be read.</param>
/// <param name="SessionTimeoutTicks">The groups' session timeout (Meta:Groups:SessionTimeout) in ticks of the history's clock.</param>
/// <param name="RebalanceTimeoutTicks">The groups' rebalance timeout (Meta:Groups:RebalanceTimeout) in ticks of the history's clock.</param>
public sealed record GroupCheckInput(
    IReadOnlyDictionary<string, IReadOnlyDictionary<(string Topic, int Partition), long>?> FinalOffsets,
    long SessionTimeoutTicks,
    long RebalanceTimeoutTicks)
{
    /// <summary>Timeouts given as times, converted to the history's clock (<see cref="Stopwatch"/> ticks).</summary>
    public static GroupCheckInput From(
        IReadOnlyDictionary<string, IReadOnlyDictionary<(string Topic, int Partition), long>?> finalOffsets, TimeSpan sessionTimeout, TimeSpan rebalanceTimeout)
        => new(finalOffsets, Ticks(sessionTimeout), Ticks(rebalanceTimeout));

    private static long Ticks(TimeSpan time) => (long)(time.TotalSeconds * Stopwatch.Frequency);
}

/// <summary>
/// The consumer group rules: no partition has two owners at once, and every acknowledged offset commit is readable
/// at the end or superseded by a later commit. Both judge only what a client can observe: call intervals
/// [invoked, completed] on one monotonic clock, answers, and the offsets read at the end.
/// </summary>
public static class GroupChecker
{
    /// <summary>
    /// <para><b>one-owner-per-partition.</b> For a member m (a member id in a group) and a partition p (topic id and
    /// index), every heartbeat answer of m whose assignment lists p proves that m owned p in the coordinator's state
    /// throughout a <i>certain interval</i>, and two different members' certain intervals for one partition must not
    /// overlap. An answer of call i (invoked at s_i, answered at t_i) gives [t_i, end_i) with
    /// end_i = min(s_next, s_i + session timeout, s_prev + rebalance timeout), where s_next is the invocation of m's next
    /// call of any kind and outcome (a heartbeat that stops listing p, a leave, a rejoin, or one whose answer was lost
    /// may each have released p), and s_prev that of m's previous answered call (m's first call if none).</para>
    /// <para>Why each bound is sound: the coordinator took the answer's state at some instant in [s_i, t_i], so m held
    /// p at t_i at the latest. It releases p only while handling one of m's later requests (invoked at s_next or
    /// later), or when it removes m: for silence no sooner than the session timeout after the last heartbeat it handled
    /// (handled after s_i), for a revocation left unacknowledged no sooner than the rebalance timeout after the
    /// member's own heartbeat that started it, which came after s_prev because the member lists exactly its last
    /// answer's partitions as owned, so any older revocation was acknowledged by then (the workload does; a new
    /// activation only extends both clocks). The coordinator's clock and this history's run at the same rate (one
    /// machine, monotonic clocks).</para>
    /// <para>Consecutive calls of m whose answers both list p join into one interval [t_i, end_j) when the later
    /// one is not a join (epoch 0): with no other call of m in between, m neither released p nor can have been
    /// removed (the later call, with a non-zero epoch, would have been refused), so it held p all along.</para>
    /// <para>An overlap is therefore a moment at which the coordinator's state gave p to two members, whatever their
    /// epochs: stronger than "no partition owned by two members in one epoch", which it implies. Assumes each
    /// member's calls do not overlap (the workload makes one at a time).</para>
    /// </summary>
    public const string OneOwnerRule = "one-owner-per-partition";

    /// <summary>
    /// <para><b>acknowledged-commits-readable.</b> Per group and partition (commits set offsets, and the workload sends
    /// each partition's offsets from one counter, so values are unique and grow in invocation order): when at least
    /// one commit of the partition was acknowledged, the final read holds a value, that value was sent by some commit
    /// c that was not refused, and no acknowledged commit was invoked after c completed (for c whose outcome is
    /// unknown: after the client gave up on it). With one committer per partition at a time this is exactly "the
    /// value read is at least the last acknowledged one, and was sent". When no commit was acknowledged, the final
    /// read holds nothing or a value sent by a commit that was not refused.</para>
    /// <para>So an acknowledged commit that is missing, or overwritten by an older commit landing after it, is a
    /// violation; so is a value nobody sent, or one only a refused commit sent (the history's group client makes one
    /// attempt per call, so a refusal is definite). A commit whose outcome is unknown may be the one read only if it
    /// was still in flight when the last acknowledged commit was sent.</para>
    /// </summary>
    public const string CommitsReadableRule = "acknowledged-commits-readable";

    public static IReadOnlyList<InvariantResult> Check(IReadOnlyList<Operation> history, GroupCheckInput input)
        => [OnePartitionOwner(history, input), AcknowledgedCommitsReadable(history, input)];

    /// <summary>One member's certain ownership of one partition, from one answer or a chain of consecutive ones.</summary>
    private sealed class Ownership(string memberId, Operation first, long start, long end)
    {
        public string MemberId { get; } = memberId;

        public Operation First { get; } = first;

        public Operation Last { get; set; } = first;

        public long Start { get; } = start;

        public long End { get; set; } = end;
    }

    internal static InvariantResult OnePartitionOwner(IReadOnlyList<Operation> history, GroupCheckInput input)
    {
        var owned = new Dictionary<(string Group, GroupPartition Partition), List<Ownership>>();
        var intervals = 0;
        foreach (var member in history.Where(o => o.Heartbeat is not null).GroupBy(o => (o.Heartbeat!.GroupId, o.Heartbeat.MemberId)))
        {
            var calls = member.OrderBy(o => o.InvokedAt).ThenBy(o => o.Id).ToList();
            var open = new Dictionary<GroupPartition, Ownership>();
            var previousAnswered = calls[0].InvokedAt;
            for (var i = 0; i < calls.Count; i++)
            {
                var call = calls[i];
                var heartbeat = call.Heartbeat!;
                if (call.Outcome != Outcome.Ok || call.Kind == OperationKind.GroupLeave || heartbeat.Assigned is null)
                {
                    open.Clear(); // The chain breaks: this call may have released anything.
                    continue;
                }

                var next = i + 1 < calls.Count ? calls[i + 1].InvokedAt : long.MaxValue;
                var end = Math.Min(next, Math.Min(Add(call.InvokedAt, input.SessionTimeoutTicks), Add(previousAnswered, input.RebalanceTimeoutTicks)));
                var chained = heartbeat.RequestEpoch != 0;
                var nowOpen = new Dictionary<GroupPartition, Ownership>();
                foreach (var partition in heartbeat.Assigned.Distinct())
                {
                    if (chained && open.TryGetValue(partition, out var ownership))
                    {
                        ownership.End = Math.Max(ownership.End, end);
                        ownership.Last = call;
                    }
                    else
                    {
                        ownership = new Ownership(heartbeat.MemberId, call, call.CompletedAt, end);
                        var key = (heartbeat.GroupId, partition);
                        if (!owned.TryGetValue(key, out var list))
                        {
                            owned[key] = list = [];
                        }

                        list.Add(ownership);
                        intervals++;
                    }

                    nowOpen[partition] = ownership;
                }

                open = nowOpen;
                previousAnswered = call.InvokedAt;
            }
        }

        var violations = new List<string>();
        foreach (var ((group, partition), list) in owned.OrderBy(kv => kv.Key.Group, StringComparer.Ordinal).ThenBy(kv => kv.Key.Partition.Topic, StringComparer.Ordinal).ThenBy(kv => kv.Key.Partition.Partition))
        {
            var sorted = list.Where(o => o.Start < o.End).OrderBy(o => o.Start).ToList();
            var active = new List<Ownership>();
            var reported = 0;
            foreach (var ownership in sorted)
            {
                active.RemoveAll(a => a.End <= ownership.Start);
                foreach (var other in active.Where(a => a.MemberId != ownership.MemberId))
                {
                    if (reported++ < 5)
                    {
                        violations.Add($"group {group}: partition {partition} ({partition.TopicId:N}) had two owners at once over "
                            + $"{Seconds(ownership.Start)}..{Seconds(Math.Min(other.End, ownership.End))}: member {other.MemberId} "
                            + $"(epoch {other.First.Heartbeat!.AnsweredEpoch}..{other.Last.Heartbeat!.AnsweredEpoch}, answers #{other.First.Id}..#{other.Last.Id}, "
                            + $"certain {Seconds(other.Start)}..{Seconds(other.End)}) and member {ownership.MemberId} "
                            + $"(epoch {ownership.First.Heartbeat!.AnsweredEpoch}..{ownership.Last.Heartbeat!.AnsweredEpoch}, answers #{ownership.First.Id}..#{ownership.Last.Id}, "
                            + $"certain {Seconds(ownership.Start)}..{Seconds(ownership.End)})");
                    }
                }

                active.Add(ownership);
            }
        }

        return new(OneOwnerRule,
            "no partition is owned by two members at once: each heartbeat answer listing it proves ownership from the answer until the member's next call, "
            + "its session or its rebalance deadline, whichever comes first (so none in one epoch either)",
            intervals, violations);
    }

    internal static InvariantResult AcknowledgedCommitsReadable(IReadOnlyList<Operation> history, GroupCheckInput input)
    {
        var commits = history.Where(o => o.Commit is not null)
            .SelectMany(o => o.Commit!.Offsets.Select(c => (Key: (o.Commit.GroupId, c.Topic, c.Partition), Operation: o, c.Offset)))
            .GroupBy(c => c.Key)
            .ToDictionary(g => g.Key, g => g.Select(c => (c.Operation, c.Offset)).ToList());
        var violations = new List<string>();
        var checkedCount = 0;
        var unreadable = new HashSet<string>(StringComparer.Ordinal);

        foreach (var ((group, topic, partition), sent) in commits.OrderBy(kv => kv.Key.GroupId, StringComparer.Ordinal).ThenBy(kv => kv.Key.Topic, StringComparer.Ordinal).ThenBy(kv => kv.Key.Partition))
        {
            var name = $"group {group}: partition {topic}/{partition}";
            var acknowledged = sent.Where(c => c.Operation.Outcome == Outcome.Ok).ToList();
            if (!input.FinalOffsets.TryGetValue(group, out var final) || final is null)
            {
                if (acknowledged.Count > 0 && unreadable.Add(group))
                {
                    violations.Add($"group {group}: its offsets could not be read after the run, so its acknowledged commits are not shown readable");
                }

                continue;
            }

            checkedCount++;
            var lastAcknowledged = acknowledged.OrderBy(c => c.Operation.InvokedAt).LastOrDefault();
            if (!final.TryGetValue((topic, partition), out var value))
            {
                if (acknowledged.Count > 0)
                {
                    violations.Add($"{name}: acknowledged commit lost: nothing is readable, but {acknowledged.Count} commits were acknowledged, the last setting {lastAcknowledged.Offset} ({lastAcknowledged.Operation})");
                }

                continue;
            }

            var sources = sent.Where(c => c.Offset == value).ToList();
            if (sources.Count == 0)
            {
                violations.Add($"{name}: reads {value}, which no commit sent");
                continue;
            }

            var possible = sources.Where(c => c.Operation.Outcome != Outcome.Refused).ToList();
            if (possible.Count == 0)
            {
                violations.Add($"{name}: reads {value}, which only a refused commit sent ({sources[0].Operation})");
                continue;
            }

            // The value read must come from a commit that no acknowledged commit strictly follows in real time.
            var best = possible.MaxBy(c => c.Operation.CompletedAt);
            var later = acknowledged.Where(a => a.Operation.InvokedAt > best.Operation.CompletedAt).OrderBy(a => a.Operation.InvokedAt).LastOrDefault();
            if (later.Operation is not null)
            {
                violations.Add($"{name}: acknowledged commit lost: reads {value} from {best.Operation} (completed {Seconds(best.Operation.CompletedAt)}), "
                    + $"but {later.Offset} was acknowledged by a commit sent after that ({later.Operation}, invoked {Seconds(later.Operation.InvokedAt)})");
            }
        }

        foreach (var (group, final) in input.FinalOffsets.Where(kv => kv.Value is not null))
        {
            foreach (var ((topic, partition), value) in final!.Where(kv => !commits.ContainsKey((group, kv.Key.Topic, kv.Key.Partition))))
            {
                violations.Add($"group {group}: partition {topic}/{partition}: reads {value}, but no commit of it was sent");
            }
        }

        return new(CommitsReadableRule,
            "after the faults heal, every partition with an acknowledged commit reads the last acknowledged value or one sent later (by a commit not refused); "
            + "a missing or older value is an acknowledged commit lost",
            checkedCount, violations);
    }

    private static long Add(long ticks, long span) => span >= long.MaxValue - ticks ? long.MaxValue : ticks + span;

    private static string Seconds(long ticks)
        => ticks == long.MaxValue ? "end" : $"{(double)ticks / Stopwatch.Frequency:F3}s";
}
