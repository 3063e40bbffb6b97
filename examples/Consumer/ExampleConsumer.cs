using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Examples;

/// <summary>
/// A minimal consumer: joins a group through the SDK's <see cref="GroupConsumer"/>, which keeps the heartbeat loop and
/// says which partitions it was given or must give up; for each partition it owns it resumes at the group's committed
/// offset, "reads" a batch of records and commits the next position. A partition moving to another member resumes where
/// the last commit left it, so no record is skipped (some may be read twice, as with any at-least-once consumer).
/// </summary>
public sealed class ExampleConsumer(IMetaClient client, string groupId, string topic, string name, TextWriter output)
{
    private readonly ExampleLog _log = new(output, name);
    private readonly Lock _lock = new();
    private readonly Dictionary<int, long> _positions = [];
    private readonly List<(int Partition, long From, long To)> _read = [];

    /// <summary>Time between two batches. Default: 1 second.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Records "read" per partition per batch. Default: 10.</summary>
    public int BatchSize { get; init; } = 10;

    /// <summary>Every batch read so far: partition, first offset, and the offset after the last.</summary>
    public IReadOnlyList<(int Partition, long From, long To)> Read
    {
        get
        {
            lock (_lock)
            {
                return [.. _read];
            }
        }
    }

    /// <summary>The partitions this consumer owns now.</summary>
    public IReadOnlyList<int> Owned
    {
        get
        {
            lock (_lock)
            {
                return [.. _positions.Keys.Order()];
            }
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled, then leaves the group.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var consumer = new GroupConsumer(client, new GroupConsumerOptions { GroupId = groupId, Topics = [topic] });
        var assigned = new HashSet<int>();
        consumer.PartitionsRevoked += change =>
        {
            lock (_lock)
            {
                foreach (var (_, partition) in change.Partitions)
                {
                    _positions.Remove(partition);
                    assigned.Remove(partition);
                }
            }

            _log.Say($"gave up {Describe(change.Partitions)} (member epoch {change.MemberEpoch})");
        };
        consumer.PartitionsAssigned += change =>
        {
            lock (_lock)
            {
                foreach (var (_, partition) in change.Partitions)
                {
                    assigned.Add(partition);
                }
            }

            _log.Say($"was given {Describe(change.Partitions)} (member epoch {change.MemberEpoch})");
        };

        await consumer.StartAsync(cancellationToken);
        _log.Say($"joined group '{groupId}' as member {consumer.MemberId}");
        using var timer = new PeriodicTimer(PollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await StartNewPartitionsAsync(assigned, cancellationToken);
                await ReadAndCommitAsync(consumer, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        _log.Say("leaving the group");
    }

    /// <summary>Newly given partitions start at the group's committed offset (0 when none was committed).</summary>
    private async Task StartNewPartitionsAsync(HashSet<int> assigned, CancellationToken cancellationToken)
    {
        List<int> fresh;
        lock (_lock)
        {
            fresh = [.. assigned.Where(p => !_positions.ContainsKey(p))];
        }

        if (fresh.Count == 0)
        {
            return;
        }

        var committed = (await client.FetchOffsetsAsync(groupId, [topic], cancellationToken)).Offsets.ToDictionary(o => o.Partition, o => o.Offset);
        lock (_lock)
        {
            foreach (var partition in fresh.Where(assigned.Contains))
            {
                var start = committed.GetValueOrDefault(partition);
                _positions[partition] = start;
                _log.Say($"starts {topic}-{partition} at committed offset {start}");
            }
        }
    }

    private async Task ReadAndCommitAsync(GroupConsumer consumer, CancellationToken cancellationToken)
    {
        List<(int Partition, long From, long To)> batch;
        lock (_lock)
        {
            batch = [.. _positions.Select(p => (p.Key, p.Value, p.Value + BatchSize))];
        }

        if (batch.Count == 0)
        {
            return;
        }

        // The batch is read (processed) first, then committed: a commit whose answer is lost, or that a stop interrupts,
        // may still have landed, so the records count as read either way. A commit that failed leaves the position where
        // it was, and the next owner or the next round reads the batch again (at least once, never skipped).
        lock (_lock)
        {
            _read.AddRange(batch);
        }

        try
        {
            await consumer.CommitAsync([.. batch.Select(b => new PartitionOffset(topic, b.Partition, b.To))], cancellationToken);
        }
        catch (MetaApiException e)
        {
            // A rebalance moved the epoch on: the next heartbeat brings the new assignment, and the batch is read again.
            _log.Say($"commit refused ({e.Code}); reading these partitions again after the rebalance");
            return;
        }

        lock (_lock)
        {
            foreach (var (partition, _, to) in batch)
            {
                if (_positions.ContainsKey(partition))
                {
                    _positions[partition] = to;
                }
            }
        }

        _log.Say($"read and committed {string.Join(", ", batch.Select(b => $"{topic}-{b.Partition} {b.From}..{b.To - 1}"))}");
    }

    private static string Describe(IReadOnlyList<(string Topic, int Partition)> partitions)
        => partitions.Count == 0 ? "nothing" : string.Join(", ", partitions.Select(p => $"{p.Topic}-{p.Partition}"));
}
