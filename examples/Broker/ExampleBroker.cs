using System.Text.Json;
using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Examples;

/// <summary>
/// A minimal broker: registers through the SDK's <see cref="BrokerSession"/> (which heartbeats and re-registers by
/// itself), follows the partitions it leads through a watch of the metadata log, and, as a leader, shrinks a
/// partition's ISR and expands it again through AlterPartition, as a broker does when a follower falls behind and
/// catches up. It stores no data: it shows the metadata side of a broker.
/// </summary>
public sealed class ExampleBroker(IMetaClient client, int brokerId, TextWriter output, string? rack = null)
{
    private readonly ExampleLog _log = new(output, $"broker {brokerId}");
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Topic, int Partition), PartitionView> _partitions = [];
    private Dictionary<(string Topic, int Partition), PartitionView>? _snapshot;

    /// <summary>How often a leader demonstrates an ISR shrink and expand. Default: 10 seconds.</summary>
    public TimeSpan IsrInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeat settings of the broker's session.</summary>
    public BrokerSessionOptions SessionOptions { get; init; } = new();

    /// <summary>The partitions this broker leads now, as the watch has told it.</summary>
    public IReadOnlyList<(string Topic, int Partition)> Leading
    {
        get
        {
            lock (_lock)
            {
                return [.. _partitions.Where(p => p.Value.Leader == brokerId).Select(p => p.Key).Order()];
            }
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled, then stops heartbeating without
    /// unregistering (as a broker process that dies: its session expires and its partitions get new leaders).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var session = new BrokerSession(client, brokerId, [new BrokerListener("PLAINTEXT", $"broker-{brokerId}.example", 9092)], rack, SessionOptions);
        session.StateChanged += (_, e) => _log.Say($"session {e.PreviousState} -> {e.State} (broker epoch {e.BrokerEpoch})");
        await session.StartAsync(cancellationToken);
        _log.Say($"registered with broker epoch {session.BrokerEpoch}; waiting to be unfenced");
        await session.WaitUntilUnfencedAsync(cancellationToken);
        _log.Say("unfenced: may lead partitions now");

        var isr = DemonstrateIsrChangesAsync(session, cancellationToken);
        var filter = new WatchFilter { Brokers = [brokerId], Kinds = ["topic", "partition"] };
        try
        {
            await foreach (var change in client.WatchAsync(filter, fromOffset: null, cancellationToken))
            {
                Apply(change);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _log.Say("stopping: no more heartbeats (the service fences this broker when its session times out)");
        }

        await isr;
    }

    private void Apply(WatchEvent change)
    {
        lock (_lock)
        {
            switch (change.Kind)
            {
                case WatchEventKinds.SnapshotStart:
                    _snapshot = [];
                    return;
                case WatchEventKinds.Snapshot when _snapshot is not null:
                    Read(change, _snapshot);
                    return;
                case WatchEventKinds.SnapshotEnd when _snapshot is not null:
                    var before = _partitions.ToDictionary();
                    _partitions.Clear();
                    foreach (var (key, view) in _snapshot)
                    {
                        _partitions[key] = view;
                    }

                    _snapshot = null;
                    _log.Say($"holds metadata at offset {change.Offset}: replica of {_partitions.Count} partition(s), leader of {_partitions.Count(p => p.Value.Leader == brokerId)}");
                    Report(before);
                    return;
                case WatchEventKinds.Record:
                    var previous = _partitions.ToDictionary();
                    Read(change, _partitions);
                    Report(previous);
                    return;
            }
        }
    }

    /// <summary>Says what changed in this broker's leaderships.</summary>
    private void Report(Dictionary<(string Topic, int Partition), PartitionView> before)
    {
        foreach (var (key, view) in _partitions.OrderBy(p => p.Key))
        {
            var led = before.TryGetValue(key, out var old) && old.Leader == brokerId;
            if (view.Leader == brokerId && !led)
            {
                _log.Say($"now leads {key.Topic}-{key.Partition} (leader epoch {view.LeaderEpoch}, ISR [{string.Join(",", view.Isr)}])");
            }
            else if (view.Leader != brokerId && led)
            {
                _log.Say($"no longer leads {key.Topic}-{key.Partition}: broker {view.Leader} does (leader epoch {view.LeaderEpoch})");
            }
        }

        foreach (var key in before.Keys.Where(k => !_partitions.ContainsKey(k) && before[k].Leader == brokerId))
        {
            _log.Say($"no longer leads {key.Topic}-{key.Partition}: the topic was deleted");
        }
    }

    /// <summary>Applies a topic or partition record (or snapshot item) to <paramref name="into"/>.</summary>
    private static void Read(WatchEvent change, Dictionary<(string Topic, int Partition), PartitionView> into)
    {
        if (change.Record is not { } record)
        {
            return;
        }

        if (change.Type == "topic")
        {
            var topic = record.Deserialize<TopicChange>(JsonSerializerOptions.Web)!;
            foreach (var key in into.Keys.Where(k => k.Topic == topic.Name).ToList())
            {
                into.Remove(key);
            }

            if (!topic.Deleted)
            {
                foreach (var partition in topic.InitialPartitions)
                {
                    into[(topic.Name, partition.Partition)] = partition;
                }
            }
        }
        else if (change.Type == "partition")
        {
            var partition = record.Deserialize<PartitionChange>(JsonSerializerOptions.Web)!;
            into[(partition.Topic, partition.State.Partition)] = partition.State;
        }
    }

    /// <summary>Now and then, on one partition this broker leads, drops a follower from the ISR and adds it back.</summary>
    private async Task DemonstrateIsrChangesAsync(BrokerSession session, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(IsrInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                (string Topic, int Partition, PartitionView View)? pick;
                lock (_lock)
                {
                    pick = _partitions.Where(p => p.Value.Leader == brokerId && p.Value.Isr.Count >= 3)
                        .Select(p => ((string, int, PartitionView)?)(p.Key.Topic, p.Key.Partition, p.Value)).FirstOrDefault();
                }

                if (pick is not var (topic, partition, view))
                {
                    continue;
                }

                var follower = view.Isr.Last(r => r != brokerId);
                var shrunk = await AlterIsrAsync(session, topic, partition, view, [.. view.Isr.Where(r => r != follower)],
                    $"follower {follower} fell behind", cancellationToken);
                if (shrunk is not null)
                {
                    await Task.Delay(IsrInterval / 4, cancellationToken);
                    await AlterIsrAsync(session, topic, partition, shrunk, [.. shrunk.Isr, follower], $"follower {follower} caught up", cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task<PartitionView?> AlterIsrAsync(
        BrokerSession session, string topic, int partition, PartitionView view, List<int> isr, string why, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await client.AlterPartitionAsync(topic, partition,
                new AlterPartitionRequest(brokerId, session.BrokerEpoch, view.LeaderEpoch, view.PartitionEpoch, isr), cancellationToken);
            var now = answer.Partition;
            _log.Say($"ISR of {topic}-{partition} is now [{string.Join(",", now.Isr)}]: {why} (partition epoch {now.PartitionEpoch})");
            return new PartitionView(now.Partition, now.Replicas, now.Isr, now.Leader, now.LeaderEpoch, now.PartitionEpoch);
        }
        catch (MetaApiException e) when (e.StatusCode is >= 400 and < 500)
        {
            // Someone else changed the partition first (a new leader, a controller decision): the watch brings it.
            _log.Say($"AlterPartition of {topic}-{partition} refused ({e.Code}); waiting for the watch to bring the new state");
            return null;
        }
    }

    /// <summary>A partition's state as the log's records carry it.</summary>
    private sealed record PartitionView(int Partition, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr, int Leader, int LeaderEpoch, int PartitionEpoch);

    private sealed record TopicChange(string Name, Guid TopicId, IReadOnlyList<PartitionView> InitialPartitions, bool Deleted);

    private sealed record PartitionChange(Guid TopicId, string Topic, PartitionView State);
}
