using System.Collections.Concurrent;
using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Chaos;

/// <summary>
/// The clients: one task per broker (registration, heartbeats, controlled shutdown and restart), a topic admin
/// (create, delete, add partitions, alter configs), a partition leader driver (AlterPartition shrink/expand, preferred
/// elections), and consumer group members and committers (<see cref="GroupWorkload"/>, through
/// <paramref name="groupClient"/>); every acknowledged write is followed by a read with minOffset at its offset.
/// </summary>
internal sealed class Workload(IMetaClient client, IMetaClient groupClient, History history, ChaosOptions options, CancellationTokenSource stopAll)
{
    /// <summary>Brokers' current epochs, so that the partition driver can speak as a partition's leader.</summary>
    private readonly ConcurrentDictionary<int, long> _epochs = new();
    private long _seenOffset;

    public GroupWorkload Groups => _groups ??= new GroupWorkload(groupClient, history, options, Enough);

    private GroupWorkload? _groups;

    public Task RunAsync(CancellationToken stop)
        => Task.WhenAll([
            .. Enumerable.Range(1, options.Brokers).Select(id => Guard(() => BrokerAsync(id, new Random(options.Seed * 31 + id), stop))),
            Guard(() => AdminAsync(new Random(options.Seed * 17), stop)),
            Guard(() => PartitionsAsync(new Random(options.Seed * 13), stop)),
            Guard(() => Groups.RunAsync(stop)),
        ]);

    private static async Task Guard(Func<Task> run)
    {
        try
        {
            await run();
        }
        catch (OperationCanceledException)
        {
            // The run's time is up.
        }
    }

    private bool Enough(CancellationToken stop)
    {
        if (history.Count >= options.MaxOperations)
        {
            stopAll.Cancel();
        }

        return stop.IsCancellationRequested;
    }

    private void Saw(long offset)
    {
        long seen;
        while (offset > (seen = Interlocked.Read(ref _seenOffset)) && Interlocked.CompareExchange(ref _seenOffset, offset, seen) != seen)
        {
        }
    }

    private async Task BrokerAsync(int id, Random random, CancellationToken stop)
    {
        var name = $"broker-{id}";
        long? epoch = null;
        var applied = 0L;
        while (!Enough(stop))
        {
            if (epoch is null)
            {
                var incarnation = Guid.NewGuid();
                var registered = await history.RecordAsync(name, OperationKind.RegisterBroker, $"{id} {incarnation:N}",
                    () => client.RegisterBrokerAsync(id, new BrokerRegistrationRequest(incarnation, [new BrokerListener("PLAINTEXT", "127.0.0.1", 9000 + id)], $"rack-{id % 2}"), stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new BrokerEffect(id, incarnation, a.BrokerEpoch)] });
                if (registered is null)
                {
                    await Task.Delay(300, stop);
                    continue;
                }

                epoch = registered.BrokerEpoch;
                applied = Math.Max(applied, registered.MetadataOffset);
                Saw(registered.MetadataOffset);
                await ReadAfterAsync(name, registered.MetadataOffset, [new BrokerEffect(id, incarnation, registered.BrokerEpoch)], stop);
                _epochs[id] = epoch.Value;
            }

            var shutDown = random.NextDouble() < 0.01;
            var beat = await history.RecordAsync(name, shutDown ? OperationKind.ControlledShutdown : OperationKind.Heartbeat, $"{id} epoch {epoch} applied {applied}",
                () => client.SendBrokerHeartbeatAsync(id, new BrokerHeartbeatRequest(epoch.Value, applied, shutDown), stop),
                (a, o) => o with { MetadataOffset = a.MetadataOffset });
            if (beat is null)
            {
                // A refusal (stale epoch after fencing) or no answer: register a new incarnation if the session may be gone.
                if (history.Operations.LastOrDefault(o => o.Client == name) is { Outcome: Outcome.Refused })
                {
                    _epochs.TryRemove(id, out _);
                    epoch = null;
                }
            }
            else
            {
                applied = Math.Max(applied, Math.Min(beat.MetadataOffset, Interlocked.Read(ref _seenOffset) + 1_000_000));
                if (beat.ShouldShutDown || (beat.IsFenced && shutDown))
                {
                    // Told to stop: the process "restarts" as a new incarnation after a moment.
                    _epochs.TryRemove(id, out _);
                    epoch = null;
                    await Task.Delay(random.Next(500, 2000), stop);
                }
            }

            await Task.Delay(400, stop);
        }
    }

    private async Task ReadAfterAsync(string name, long offset, IReadOnlyList<Effect> mustSee, CancellationToken stop)
        => await history.RecordAsync(name, OperationKind.ReadMetadata, $"minOffset {offset}",
            () => client.GetMetadataAsync(null, offset, includeFenced: true, stop),
            (a, o) => o with { MetadataOffset = a.MetadataOffset, MinOffset = offset, MustSee = mustSee, Answer = a });

    private async Task AdminAsync(Random random, CancellationToken stop)
    {
        const string name = "admin";
        var created = 0;
        while (!Enough(stop))
        {
            await Task.Delay(random.Next(150, 500), stop);
            var metadata = await history.RecordAsync(name, OperationKind.ReadMetadata, "all", () => client.GetMetadataAsync(null, null, stop), (a, o) => o with { MetadataOffset = a.MetadataOffset });
            if (metadata is null)
            {
                continue;
            }

            var topics = metadata.Topics.Where(t => t.Name.StartsWith("chaos-", StringComparison.Ordinal)).ToList();
            var choice = random.Next(10);
            if (topics.Count < 3 || (choice < 3 && topics.Count < 8))
            {
                var topic = $"chaos-{options.Seed}-{created++}";
                var answer = await history.RecordAsync(name, OperationKind.CreateTopic, $"{topic} 3x2",
                    () => client.CreateTopicAsync(new CreateTopicRequest(topic, 3, 2), stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new TopicEffect(topic, a.Topic.TopicId, TopicEffect.Created)] });
                await AfterAsync(answer?.MetadataOffset, answer is null ? [] : [new TopicEffect(topic, answer.Topic.TopicId, TopicEffect.Created)]);
            }
            else if (choice < 5)
            {
                var victim = topics[random.Next(topics.Count)];
                var answer = await history.RecordAsync(name, OperationKind.DeleteTopic, victim.Name,
                    () => client.DeleteTopicAsync(victim.Name, stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new TopicEffect(victim.Name, a.TopicId, TopicEffect.Deleted)] });
                await AfterAsync(answer?.MetadataOffset, answer is null ? [] : [new TopicEffect(victim.Name, answer.TopicId, TopicEffect.Deleted)]);
            }
            else if (choice < 7)
            {
                var topic = topics[random.Next(topics.Count)];
                var total = topic.Partitions.Count + 1;
                var answer = await history.RecordAsync(name, OperationKind.AddPartitions, $"{topic.Name} to {total}",
                    () => client.AddPartitionsAsync(topic.Name, new AddPartitionsRequest(total), stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new TopicEffect(topic.Name, a.Topic.TopicId, TopicEffect.PartitionsAdded, total)] });
                await AfterAsync(answer?.MetadataOffset, answer is null ? [] : [new TopicEffect(topic.Name, answer.Topic.TopicId, TopicEffect.PartitionsAdded, total)]);
            }
            else
            {
                var topic = topics[random.Next(topics.Count)];
                var configs = new Dictionary<string, string> { ["retention.ms"] = (60_000 * random.Next(1, 1000)).ToString(System.Globalization.CultureInfo.InvariantCulture) };
                var answer = await history.RecordAsync(name, OperationKind.AlterConfigs, $"{topic.Name} retention.ms={configs["retention.ms"]}",
                    () => client.AlterTopicConfigsAsync(topic.Name, new AlterConfigsRequest(configs.ToDictionary(kv => kv.Key, kv => (string?)kv.Value)), stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new TopicEffect(topic.Name, a.TopicId, TopicEffect.ConfigsAltered, null, configs)] });
                await AfterAsync(answer?.MetadataOffset, answer is null ? [] : [new TopicEffect(topic.Name, answer.TopicId, TopicEffect.ConfigsAltered, null, configs)]);
            }

            async Task AfterAsync(long? offset, IReadOnlyList<Effect> effects)
            {
                if (offset is { } o)
                {
                    Saw(o);
                    await ReadAfterAsync(name, o, effects, stop);
                }
            }
        }
    }

    private async Task PartitionsAsync(Random random, CancellationToken stop)
    {
        const string name = "leaders";
        while (!Enough(stop))
        {
            await Task.Delay(random.Next(100, 300), stop);
            var metadata = await history.RecordAsync(name, OperationKind.ReadMetadata, "all", () => client.GetMetadataAsync(null, null, includeFenced: true, stop), (a, o) => o with { MetadataOffset = a.MetadataOffset });
            var partitions = metadata?.Topics.SelectMany(t => t.Partitions.Select(p => (Topic: t.Name, Partition: p))).ToList();
            if (partitions is not { Count: > 0 })
            {
                continue;
            }

            var (topic, partition) = partitions[random.Next(partitions.Count)];
            if (random.Next(5) == 0)
            {
                var answer = await history.RecordAsync(name, OperationKind.Election, $"preferred {topic}/{partition.Partition}",
                    () => client.ElectLeadersAsync(new ElectionRequest("preferred", [new TopicPartitions(topic, [partition.Partition])]), stop),
                    (a, o) => o with
                    {
                        MetadataOffset = a.MetadataOffset,
                        Effects = [.. a.Results.Where(r => r.ErrorCode is null).Select(r => new PartitionEffect(r.Topic, r.Partition, r.Leader, r.LeaderEpoch, null, null))],
                    });
                if (answer is not null)
                {
                    Saw(answer.MetadataOffset);
                    await ReadAfterAsync(name, answer.MetadataOffset, [.. answer.Results.Where(r => r.ErrorCode is null).Select(r => new PartitionEffect(r.Topic, r.Partition, r.Leader, r.LeaderEpoch, null, null))], stop);
                }

                continue;
            }

            if (partition.Leader < 0 || !_epochs.TryGetValue(partition.Leader, out var brokerEpoch))
            {
                continue;
            }

            var live = metadata!.Brokers.Where(b => b.State == "unfenced").Select(b => b.BrokerId).ToHashSet();
            if (random.Next(3) == 0)
            {
                // As brokers send it: up to four partitions of this leader in one request, each with its own outcome.
                var led = partitions.Where(p => p.Partition.Leader == partition.Leader).OrderBy(_ => random.Next()).Take(4).ToList();
                var proposed = led.Select(p => (p.Topic, Partition: p.Partition, Isr: NextIsr(p.Partition, live), Compared: Compared(p.Partition))).ToList();
                var batch = new AlterPartitionsRequest(brokerEpoch, [.. proposed.GroupBy(p => p.Topic).Select(t => new AlterPartitionTopic(t.Key,
                    [.. t.Select(p => new AlterPartitionItem(p.Partition.Partition, p.Partition.LeaderEpoch, p.Compared, p.Isr))]))]);
                var compared = proposed.ToDictionary(p => (p.Topic, p.Partition.Partition), p => p.Compared);
                var altered = await history.RecordAsync(name, OperationKind.AlterPartition,
                    $"batch leader {partition.Leader} epoch {brokerEpoch}: " + string.Join("; ", proposed.Select(p =>
                        $"{p.Topic}/{p.Partition.Partition} le {p.Partition.LeaderEpoch} pe {p.Compared} isr [{string.Join(",", p.Isr)}]")),
                    () => client.AlterPartitionsAsync(partition.Leader, batch, stop),
                    (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = Effects(a, compared) });
                if (altered is not null)
                {
                    Saw(altered.MetadataOffset);
                    await ReadAfterAsync(name, altered.MetadataOffset, Effects(altered, compared), stop);
                }

                continue;
            }

            var isr = NextIsr(partition, live);
            var comparedEpoch = Compared(partition);
            var request = new AlterPartitionRequest(partition.Leader, brokerEpoch, partition.LeaderEpoch, comparedEpoch, isr);
            var changed = await history.RecordAsync(name, OperationKind.AlterPartition,
                $"{topic}/{partition.Partition} leader {partition.Leader} epoch {brokerEpoch} le {partition.LeaderEpoch} pe {comparedEpoch} isr [{string.Join(",", isr)}]",
                () => client.AlterPartitionAsync(topic, partition.Partition, request, stop),
                (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [Effect(a, comparedEpoch)] });
            if (changed is not null)
            {
                Saw(changed.MetadataOffset);
                await ReadAfterAsync(name, changed.MetadataOffset, [Effect(changed, comparedEpoch)], stop);
            }

            // Now and then a stale compare-and-set, which must be refused (alter-partition-compare-and-set catches it if not).
            int Compared(PartitionInfo p) => p.PartitionEpoch > 0 && random.Next(10) == 0 ? p.PartitionEpoch - 1 : p.PartitionEpoch;
        }

        // Shrink when others are in sync, otherwise expand with a replica whose broker is up.
        IReadOnlyList<int> NextIsr(PartitionInfo p, HashSet<int> live)
        {
            var followers = p.Isr.Where(r => r != p.Leader).ToList();
            var outside = p.Replicas.Where(r => !p.Isr.Contains(r) && live.Contains(r)).ToList();
            return followers.Count > 0 && (outside.Count == 0 || random.Next(2) == 0)
                ? [.. p.Isr.Where(r => r != followers[random.Next(followers.Count)])]
                : outside.Count > 0 ? [.. p.Isr, outside[random.Next(outside.Count)]] : p.Isr;
        }

        static PartitionEffect Effect(PartitionResponse a, int compared)
            => new(a.Topic, a.Partition.Partition, a.Partition.Leader, a.Partition.LeaderEpoch, a.Partition.PartitionEpoch, a.Partition.Isr) { ComparedPartitionEpoch = compared };

        // Only the partitions the answer says changed are acknowledged; a refused one claims nothing.
        static List<Effect> Effects(AlterPartitionsResponse a, Dictionary<(string, int), int> compared)
            => [.. a.Topics.SelectMany(t => t.Partitions.Where(r => r.State is not null).Select(r => (Effect)new PartitionEffect(
                t.Topic, r.Partition, r.State!.Leader, r.State.LeaderEpoch, r.State.PartitionEpoch, r.State.Isr) { ComparedPartitionEpoch = compared[(t.Topic, r.Partition)] }))];
    }
}
