using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Chaos;

/// <summary>One invariant checked, with how many things it looked at and what broke it.</summary>
public sealed record InvariantResult(string Name, string Description, int Checked, IReadOnlyList<string> Violations)
{
    public bool Holds => Violations.Count == 0;
}

/// <summary>
/// Checks a run's history against the metadata log and the silos' final images.
/// </summary>
/// <remarks>
/// Jepsen's Knossos (Clojure) and Porcupine (Go), the usual linearizability checkers, are not available from this
/// project's NuGet feed, and a general linearizability search is not needed here: the metadata log already is the
/// service's total order of committed changes, with offsets the service hands back. So this checker is focused: it
/// replays the log and verifies that each acknowledged write is in it (at or below the offset returned), that the
/// log's per-partition history obeys Kafka's epoch rules, that the log is gap-free, that every silo's image equals the
/// replay, and that reads with minOffset reflect the writes they were issued after.
/// </remarks>
public static class HistoryChecker
{
    /// <param name="groups">The final offsets and group timeouts for the consumer group rules (<see cref="GroupChecker"/>);
    /// without them those rules are left out.</param>
    public static IReadOnlyList<InvariantResult> Check(
        IReadOnlyList<Operation> history, MetadataLog log, IReadOnlyDictionary<string, MetadataResponse> siloImages, GroupCheckInput? groups = null,
        IReadOnlyList<WatcherTrace>? watchers = null)
        =>
        [
            LogIsContiguous(log),
            .. watchers is null ? [] : new[] { WatchersSawEveryOffset(log, watchers) },
            PartitionEpochsIncrease(log),
            OneLeaderPerLeaderEpoch(log),
            IsrWithinReplicas(log),
            AcknowledgedWritesInLog(history, log),
            AlterPartitionIsCompareAndSet(history, log),
            SiloImagesEqualReplay(log, siloImages),
            ReadsSawTheirWrites(history, log),
            GroupLogOneOwner(log),
            .. groups is null ? [] : GroupChecker.Check(history, groups),
        ];

    /// <summary>
    /// Every watcher, started at offset 1 and kept through the run's faults (its SDK resuming on another silo), received
    /// every record from 1 to the final head exactly once and in order, each with the log's type and key at that offset.
    /// A snapshot (sent when the offset asked for is no longer in the log) stands for everything up to its offset, so
    /// records go on after it; a snapshot behind what was already delivered would deliver those offsets twice. Events past
    /// the head the log was read at are not judged.
    /// </summary>
    internal static InvariantResult WatchersSawEveryOffset(MetadataLog log, IReadOnlyList<WatcherTrace> watchers)
    {
        var violations = new List<string>();
        var byOffset = log.Entries.ToDictionary(e => e.Offset);
        var checkedRecords = 0;
        foreach (var watcher in watchers)
        {
            if (watcher.Error is { } error)
            {
                violations.Add($"{watcher.Name}: the watch ended by itself: {error}");
            }

            long next = 1;
            var problems = 0;
            // The log was read at its settled head; the service may write on afterwards (sessions of the stopped
            // workload's consumers expire), and what a watcher received past that head cannot be checked against it.
            foreach (var delivered in watcher.Events.Where(e => e.Offset <= log.Head))
            {
                string? problem = null;
                if (delivered.IsSnapshot)
                {
                    problem = delivered.Offset < next - 1 ? $"a snapshot at {delivered.Offset} went back behind offset {next - 1}, already delivered" : null;
                    next = Math.Max(next, delivered.Offset + 1);
                }
                else
                {
                    checkedRecords++;
                    problem = delivered.Offset < next ? $"offset {delivered.Offset} delivered again (or out of order) after {next - 1}"
                        : delivered.Offset > next ? $"offsets {next}..{delivered.Offset - 1} never delivered before {delivered.Offset}"
                        : !byOffset.TryGetValue(delivered.Offset, out var entry) || entry.Type != delivered.Type || entry.Key != delivered.Key
                            ? $"offset {delivered.Offset} delivered as {delivered.Type} {delivered.Key}, but the log holds {(entry is null ? "nothing there" : $"{entry.Type} {entry.Key}")}"
                            : null;
                    next = Math.Max(next, delivered.Offset + 1);
                }

                if (problem is not null && ++problems <= 20)
                {
                    violations.Add($"{watcher.Name}: {problem}");
                }
            }

            if (next - 1 < log.Head)
            {
                violations.Add($"{watcher.Name}: reached offset {next - 1}, not the head {log.Head}");
            }
        }

        return new("watchers-saw-every-offset", "every watcher received offsets 1..head once each, in order, as the log holds them",
            checkedRecords, violations);
    }

    /// <summary>
    /// Replays the consumer group records (each group's members with their assigned and pending-revocation partitions)
    /// and checks that after every record no partition belongs to two members of one group: the coordinator's own
    /// history of ownership, as committed, never gives a partition a second owner, in one epoch or across epochs. A
    /// group's write logs its departures before its changes, so a partition freed and given in one write passes.
    /// </summary>
    internal static InvariantResult GroupLogOneOwner(MetadataLog log)
    {
        var violations = new List<string>();
        var owners = new Dictionary<(string Group, Guid Topic, int Partition), string>();
        var owned = new Dictionary<(string Group, string Member), List<(Guid Topic, int Partition)>>();
        foreach (var (offset, group, member) in log.GroupChanges)
        {
            if (group is { Deleted: true })
            {
                foreach (var key in owners.Keys.Where(k => k.Group == group.GroupId).ToList())
                {
                    owners.Remove(key);
                }

                foreach (var key in owned.Keys.Where(k => k.Group == group.GroupId).ToList())
                {
                    owned.Remove(key);
                }

                continue;
            }

            if (member is null)
            {
                continue;
            }

            if (owned.Remove((member.GroupId, member.MemberId), out var before))
            {
                foreach (var (topic, partition) in before)
                {
                    owners.Remove((member.GroupId, topic, partition));
                }
            }

            if (member.Member is not { } description)
            {
                continue;
            }

            var now = description.Assignment.Concat(description.PendingRevocation)
                .SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))).Distinct().ToList();
            foreach (var (topic, partition) in now)
            {
                if (owners.TryGetValue((member.GroupId, topic, partition), out var other) && other != member.MemberId && violations.Count < 20)
                {
                    violations.Add($"offset {offset}: group {member.GroupId} gives {topic:N}/{partition} to member {member.MemberId} while member {other} owns it");
                }

                owners[(member.GroupId, topic, partition)] = member.MemberId;
            }

            owned[(member.GroupId, member.MemberId)] = now;
        }

        return new("group-log-one-owner", "after every group record of the metadata log, no partition belongs to two members of a group",
            log.GroupChanges.Count, violations);
    }

    internal static InvariantResult LogIsContiguous(MetadataLog log)
    {
        var violations = new List<string>();
        long expected = 1;
        foreach (var entry in log.Entries)
        {
            if (entry.Offset != expected)
            {
                violations.Add(entry.Offset < expected
                    ? $"metadata log: offset {entry.Offset} appears twice or out of order"
                    : $"metadata log: gap, offsets {expected}..{entry.Offset - 1} missing before {entry.Type} {entry.Key}");
            }

            expected = entry.Offset + 1;
        }

        if (expected - 1 != log.Head)
        {
            violations.Add($"metadata log: head is {log.Head} but the last record is at {expected - 1}");
        }

        violations.AddRange(log.Undecodable.Select(u => $"metadata log: undecodable record at {u}"));
        return new("log-contiguous", "offsets 1..head are all present, once each, and decode", log.Entries.Count, violations);
    }

    private static IEnumerable<IGrouping<(Guid, int), PartitionVersion>> ByPartition(MetadataLog log)
        => log.PartitionVersions.GroupBy(v => (v.TopicId, v.State.Partition));

    internal static InvariantResult PartitionEpochsIncrease(MetadataLog log)
    {
        var violations = new List<string>();
        var partitions = 0;
        foreach (var versions in ByPartition(log))
        {
            partitions++;
            PartitionVersion? previous = null;
            foreach (var version in versions)
            {
                if (previous is not null && version.State.PartitionEpoch <= previous.State.PartitionEpoch)
                {
                    violations.Add($"partition {version.Topic}/{version.State.Partition}: partition epoch {version.State.PartitionEpoch} at offset {version.Offset} does not exceed {previous.State.PartitionEpoch} at offset {previous.Offset}");
                }

                if (previous is not null && version.State.LeaderEpoch < previous.State.LeaderEpoch)
                {
                    violations.Add($"partition {version.Topic}/{version.State.Partition}: leader epoch went back from {previous.State.LeaderEpoch} (offset {previous.Offset}) to {version.State.LeaderEpoch} (offset {version.Offset})");
                }

                previous = version;
            }
        }

        return new("partition-epochs-increase", "per partition, the log's changes form one chain of strictly increasing partition epochs and never-decreasing leader epochs", partitions, violations);
    }

    internal static InvariantResult OneLeaderPerLeaderEpoch(MetadataLog log)
    {
        var violations = new List<string>();
        var epochs = 0;
        foreach (var versions in ByPartition(log))
        {
            foreach (var epoch in versions.GroupBy(v => v.State.LeaderEpoch))
            {
                epochs++;
                var leaders = epoch.Select(v => v.State.Leader).Distinct().ToList();
                if (leaders.Count > 1)
                {
                    var first = epoch.First();
                    violations.Add($"partition {first.Topic}/{first.State.Partition}: leader epoch {epoch.Key} has leaders {string.Join(", ", leaders)} (offsets {string.Join(", ", epoch.Select(v => $"{v.Offset}:{v.State.Leader}"))})");
                }
            }
        }

        return new("one-leader-per-epoch", "per partition, never two different leaders (or leader and none) for one leader epoch", epochs, violations);
    }

    internal static InvariantResult IsrWithinReplicas(MetadataLog log)
    {
        var violations = new List<string>();
        foreach (var v in log.PartitionVersions)
        {
            var name = $"partition {v.Topic}/{v.State.Partition} at offset {v.Offset}";
            if (v.State.Isr.Except(v.State.Replicas).Any())
            {
                violations.Add($"{name}: ISR [{string.Join(",", v.State.Isr)}] not within replicas [{string.Join(",", v.State.Replicas)}]");
            }

            if (v.State.Leader != PartitionState.NoLeader && !v.State.Isr.Contains(v.State.Leader))
            {
                violations.Add($"{name}: leader {v.State.Leader} not in ISR [{string.Join(",", v.State.Isr)}]");
            }
        }

        return new("isr-within-replicas", "every partition state has ISR within replicas and its leader in the ISR (or no leader)", log.PartitionVersions.Count, violations);
    }

    internal static InvariantResult AcknowledgedWritesInLog(IReadOnlyList<Operation> history, MetadataLog log)
    {
        var violations = new List<string>();
        var count = 0;
        foreach (var operation in history.Where(o => o.Outcome == Outcome.Ok))
        {
            foreach (var effect in operation.Effects)
            {
                count++;
                var offset = operation.MetadataOffset ?? long.MaxValue;
                if (offset > log.Head)
                {
                    violations.Add($"{effect.Entity}: acknowledged at offset {offset}, beyond the log head {log.Head} ({operation})");
                }
                else if (Find(effect, log, offset) is null)
                {
                    violations.Add($"{effect.Entity}: acknowledged write lost, no record at or below offset {offset} shows {effect} ({operation})");
                }
            }
        }

        return new("acknowledged-writes-in-log", "every acknowledged broker registration, topic change and partition change has its record in the log at or below the offset it returned (so it is in the final state or superseded)", count, violations);
    }

    internal static InvariantResult AlterPartitionIsCompareAndSet(IReadOnlyList<Operation> history, MetadataLog log)
    {
        var violations = new List<string>();
        var count = 0;
        foreach (var operation in history.Where(o => o is { Kind: OperationKind.AlterPartition, Outcome: Outcome.Ok }))
        {
            foreach (var effect in operation.Effects.OfType<PartitionEffect>().Where(e => e.ComparedPartitionEpoch is not null))
            {
                count++;
                var version = FindVersion(effect, log, operation.MetadataOffset ?? long.MaxValue);
                if (version is null || version.State.PartitionEpoch == effect.ComparedPartitionEpoch)
                {
                    continue; // Lost (reported above) or answered unchanged at the epoch it compared against.
                }

                var previous = log.PartitionVersions.LastOrDefault(v => v.Offset < version.Offset && v.TopicId == version.TopicId && v.State.Partition == version.State.Partition);
                if (previous?.State.PartitionEpoch != effect.ComparedPartitionEpoch)
                {
                    violations.Add($"{effect.Entity}: AlterPartition compared against partition epoch {effect.ComparedPartitionEpoch}, but its record at offset {version.Offset} follows partition epoch {previous?.State.PartitionEpoch} ({operation})");
                }
            }
        }

        return new("alter-partition-compare-and-set", "every acknowledged AlterPartition's change directly follows the partition epoch it compared against (a stale one is never applied)", count, violations);
    }

    private static PartitionVersion? FindVersion(PartitionEffect p, MetadataLog log, long atOrBelow)
        => log.PartitionVersions.LastOrDefault(v => v.Offset <= atOrBelow && v.Topic == p.Topic && v.State.Partition == p.Partition
            && v.State.Leader == p.Leader && v.State.LeaderEpoch == p.LeaderEpoch
            && (p.PartitionEpoch is null || v.State.PartitionEpoch == p.PartitionEpoch)
            && (p.Isr is null || v.State.Isr.Order().SequenceEqual(p.Isr.Order())));

    /// <summary>The offset and topic id of the log record that shows an effect, at or below <paramref name="atOrBelow"/>.</summary>
    internal static (long Offset, Guid? TopicId)? Find(Effect effect, MetadataLog log, long atOrBelow)
    {
        switch (effect)
        {
            case PartitionEffect p:
                var version = FindVersion(p, log, atOrBelow);
                return version is null ? null : (version.Offset, version.TopicId);

            case TopicEffect t:
                foreach (var (offset, record) in log.TopicRecords)
                {
                    if (offset <= atOrBelow && record.TopicId == t.TopicId && record.Name == t.Name && Shows(record, t))
                    {
                        return (offset, record.TopicId);
                    }
                }

                return null;

            case BrokerEffect b:
                var registration = log.BrokerRecords.FirstOrDefault(r => r.Offset == b.BrokerEpoch && r.Offset <= atOrBelow);
                return registration.Record is { } r && r.BrokerId == b.BrokerId && r.IncarnationId == b.IncarnationId && r.Change == BrokerChanges.Registered
                    ? (registration.Offset, null)
                    : null;

            default:
                throw new ArgumentOutOfRangeException(nameof(effect), effect, "Unknown effect.");
        }
    }

    private static bool Shows(TopicRecord record, TopicEffect effect) => effect.Change switch
    {
        TopicEffect.Created => !record.Deleted,
        TopicEffect.Deleted => record.Deleted,
        TopicEffect.PartitionsAdded => !record.Deleted && record.InitialPartitions.Count == effect.PartitionCount,
        TopicEffect.ConfigsAltered => !record.Deleted && (effect.Configs ?? new Dictionary<string, string>())
            .All(kv => record.Configs.TryGetValue(kv.Key, out var value) && value == kv.Value),
        _ => false,
    };

    internal static InvariantResult SiloImagesEqualReplay(MetadataLog log, IReadOnlyDictionary<string, MetadataResponse> siloImages)
    {
        var violations = new List<string>();
        foreach (var (silo, image) in siloImages)
        {
            if (image.MetadataOffset < log.Head)
            {
                violations.Add($"silo {silo}: image at offset {image.MetadataOffset}, below the log head {log.Head}");
            }

            var brokers = image.Brokers.ToDictionary(b => b.BrokerId);
            foreach (var id in brokers.Keys.Union(log.Brokers.Keys).Order())
            {
                var seen = brokers.GetValueOrDefault(id);
                var replayed = log.Brokers.GetValueOrDefault(id);
                if (seen is null || replayed is null || seen.BrokerEpoch != replayed.BrokerEpoch || seen.IncarnationId != replayed.IncarnationId || seen.State != replayed.State)
                {
                    violations.Add($"silo {silo}: broker {id} is {Show(seen)}, the log says {Show(replayed)}");
                }
            }

            var topics = image.Topics.ToDictionary(t => t.Name, StringComparer.Ordinal);
            foreach (var name in topics.Keys.Union(log.Topics.Keys).Order(StringComparer.Ordinal))
            {
                var seen = topics.GetValueOrDefault(name);
                if (!log.Topics.TryGetValue(name, out var replayed) || seen is null)
                {
                    violations.Add($"silo {silo}: topic {name} is {(seen is null ? "absent" : "present")}, the log says {(replayed.Topic is null ? "absent" : "present")}");
                    continue;
                }

                var shown = string.Join(" ", seen.Partitions.Select(p => Show(p.Partition, p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.Isr)));
                var expected = string.Join(" ", replayed.Partitions.Select(p => Show(p.Partition, p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.Isr)));
                if (seen.TopicId != replayed.Topic.TopicId || shown != expected)
                {
                    violations.Add($"silo {silo}: topic {name} ({seen.TopicId:N}) is [{shown}], the log says ({replayed.Topic.TopicId:N}) [{expected}]");
                }
            }
        }

        return new("silo-images-equal-replay", "every running silo's metadata image (read at minOffset = head, fenced brokers included) equals a replay of the log", siloImages.Count, violations);
    }

    private static string Show(BrokerInfo? b) => b is null ? "absent" : $"epoch {b.BrokerEpoch} {b.State} {b.IncarnationId:N}";

    private static string Show(BrokerRecord? b) => b is null ? "absent" : $"epoch {b.BrokerEpoch} {b.State} {b.IncarnationId:N}";

    private static string Show(int partition, int leader, int leaderEpoch, int partitionEpoch, IReadOnlyList<int> replicas, IReadOnlyList<int> isr)
        => $"{partition}:L{leader}/le{leaderEpoch}/pe{partitionEpoch}/r{string.Join(",", replicas)}/isr{string.Join(",", isr)}";

    internal static InvariantResult ReadsSawTheirWrites(IReadOnlyList<Operation> history, MetadataLog log)
    {
        var violations = new List<string>();
        var count = 0;
        foreach (var read in history.Where(o => o is { Kind: OperationKind.ReadMetadata, Outcome: Outcome.Ok, MinOffset: not null, Answer: not null }))
        {
            count++;
            var answer = read.Answer!;
            if (answer.MetadataOffset < read.MinOffset)
            {
                violations.Add($"read {read}: answered at offset {answer.MetadataOffset}, below its minOffset {read.MinOffset}");
                continue;
            }

            foreach (var effect in read.MustSee)
            {
                if (Missed(effect, answer, log, read.MinOffset!.Value) is { } why)
                {
                    violations.Add($"{effect.Entity}: read missed its write: {why} ({read})");
                }
            }
        }

        return new("reads-saw-their-writes", "a read with minOffset = a write's offset answers at that offset or later and reflects the write or a later change", count, violations);
    }

    private static bool DeletedBy(MetadataLog log, Guid topicId, long offset)
        => log.TopicRecords.Any(t => t.Record.TopicId == topicId && t.Record.Deleted && t.Offset <= offset);

    private static string? Missed(Effect effect, MetadataResponse answer, MetadataLog log, long writeOffset)
    {
        switch (effect)
        {
            case PartitionEffect p:
                if (Find(p, log, writeOffset) is not { TopicId: { } topicId })
                {
                    return null; // A lost write; reported by acknowledged-writes-in-log.
                }

                var topic = answer.Topics.FirstOrDefault(t => t.TopicId == topicId);
                if (topic is null)
                {
                    return DeletedBy(log, topicId, answer.MetadataOffset) ? null : $"topic {p.Topic} ({topicId:N}) absent at offset {answer.MetadataOffset} but not deleted by then";
                }

                var partition = topic.Partitions.FirstOrDefault(x => x.Partition == p.Partition);
                return partition is not null && partition.LeaderEpoch >= p.LeaderEpoch && (p.PartitionEpoch is null || partition.PartitionEpoch >= p.PartitionEpoch)
                    ? null
                    : $"saw leader epoch {partition?.LeaderEpoch} partition epoch {partition?.PartitionEpoch}, older than the write's {p.LeaderEpoch}/{p.PartitionEpoch}";

            case TopicEffect t:
                var seen = answer.Topics.FirstOrDefault(x => x.TopicId == t.TopicId);
                if (t.Change == TopicEffect.Deleted)
                {
                    return seen is null ? null : "the deleted topic is still there";
                }

                if (seen is null)
                {
                    return DeletedBy(log, t.TopicId, answer.MetadataOffset) ? null : $"topic absent at offset {answer.MetadataOffset} but not deleted by then";
                }

                return t.PartitionCount is { } n && seen.Partitions.Count < n ? $"saw {seen.Partitions.Count} partitions, the write made {n}" : null;

            case BrokerEffect b:
                var broker = answer.Brokers.FirstOrDefault(x => x.BrokerId == b.BrokerId);
                if (broker is null)
                {
                    return log.BrokerRecords.Any(r => r.Record.BrokerId == b.BrokerId && r.Record.Change == BrokerChanges.Unregistered && r.Offset > b.BrokerEpoch && r.Offset <= answer.MetadataOffset)
                        ? null
                        : "broker absent and not unregistered by then";
                }

                return broker.BrokerEpoch >= b.BrokerEpoch ? null : $"saw broker epoch {broker.BrokerEpoch}, older than the registration's {b.BrokerEpoch}";

            default:
                return null;
        }
    }
}
