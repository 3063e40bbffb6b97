using OrleansMeta.Client;

namespace OrleansMeta.Examples;

/// <summary>
/// A minimal producer: keeps a <see cref="MetadataCache"/> of its topic current through a watch, so finding a
/// partition's leader never costs a request, and "sends" a record to each partition's leader in turn, saying when a
/// partition's leader moved. It sends nothing over the network to brokers: it shows how a producer follows leaders.
/// </summary>
public sealed class ExampleProducer(IMetaClient client, string topic, TextWriter output)
{
    private readonly ExampleLog _log = new(output, "producer");
    private readonly Dictionary<int, PartitionLeader> _leaders = [];
    private readonly Lock _lock = new();
    private readonly List<(int Partition, int Broker, long Sequence)> _sent = [];

    /// <summary>Time between two sends. Default: 500 ms.</summary>
    public TimeSpan SendInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Every send so far: the partition, the broker it went to, and its sequence number.</summary>
    public IReadOnlyList<(int Partition, int Broker, long Sequence)> Sent
    {
        get
        {
            lock (_lock)
            {
                return [.. _sent];
            }
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var cache = new MetadataCache(client, new WatchFilter { Topics = [topic] });
        await cache.StartAsync(cancellationToken);
        while (!cache.TryGetTopic(topic, out _))
        {
            _log.Say($"topic '{topic}' does not exist yet; waiting for it");
            await cache.WaitForOffsetAsync(cache.Offset + 1, cancellationToken);
        }

        _log.Say($"follows {topic} from offset {cache.Offset} through the watch");
        using var timer = new PeriodicTimer(SendInterval);
        long sequence = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!cache.TryGetTopic(topic, out var metadata))
                {
                    _log.Say($"topic '{topic}' was deleted; stopping");
                    return;
                }

                var partition = (int)(sequence % metadata.Partitions.Count);
                if (!cache.TryGetLeader(topic, partition, out var leader) || !leader.IsOnline)
                {
                    _log.Say($"{topic}-{partition} has no leader now; skipping it this round");
                    sequence++;
                    continue;
                }

                if (_leaders.TryGetValue(partition, out var before) && before.BrokerId != leader.BrokerId)
                {
                    _log.Say($"leader of {topic}-{partition} moved: broker {before.BrokerId} -> {leader.BrokerId} (leader epoch {leader.LeaderEpoch})");
                }

                _leaders[partition] = leader;
                lock (_lock)
                {
                    _sent.Add((partition, leader.BrokerId, sequence));
                }

                _log.Say($"sent record {sequence} to {topic}-{partition} on broker {leader.BrokerId}");
                sequence++;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
