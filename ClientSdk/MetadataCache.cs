using System.Text.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// Topics, partition leaders and brokers kept current by a watch (<see cref="IMetaClient.WatchAsync"/>): it starts from a snapshot
/// of the current state and applies every change after it, so lookups need no request. It also feeds the client's
/// <see cref="IMetaClient.Leaders"/>, so <see cref="IMetaClient.GetLeaderAsync"/> answers from memory for every partition
/// that has a leader. Optional: a client without one fetches metadata when its leader cache misses. Thread-safe.
/// </summary>
/// <remarks>
/// The cache is as current as its watch: after a disconnect it lags until the watch has reconnected (which the watch
/// does by itself, without losing a change). <see cref="WaitForOffsetAsync"/> waits until the cache holds a given
/// offset, e.g. one a write returned (read your own writes). Brokers are held with their listeners, so a producer finds
/// where a partition's leader listens (<see cref="TryGetLeaderEndpoint"/>); a cache whose filter names topics or a
/// prefix holds only the brokers its filter names (the watch passes a broker record only for a named broker). The
/// controller is not held.
/// </remarks>
public sealed class MetadataCache : IAsyncDisposable
{
    private readonly IMetaClient _client;
    private readonly WatchFilter? _filter;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstSnapshot = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Dictionary<string, TopicState> _topics = new(StringComparer.Ordinal);
    private Dictionary<string, TopicState>? _pending;
    private Dictionary<int, BrokerInfo> _brokers = [];
    private Dictionary<int, BrokerInfo>? _pendingBrokers;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _offset = -1;
    private Task? _run;

    /// <summary>Creates a cache; <see cref="StartAsync"/> starts it.</summary>
    /// <param name="client">The client whose watch keeps the cache current, and whose <see cref="IMetaClient.Leaders"/> it feeds.</param>
    /// <param name="filter">Which topics to hold (topics, a prefix, or brokers); null for all. Kinds are ignored: the
    /// cache watches topic, partition and broker records.</param>
    public MetadataCache(IMetaClient client, WatchFilter? filter = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _filter = (filter ?? new WatchFilter()) with { Kinds = ["topic", "partition", "broker"] };
    }

    /// <summary>The metadata log offset the cache has applied; -1 until its first snapshot arrived.</summary>
    public long Offset => Volatile.Read(ref _offset);

    /// <summary>Whether the cache holds a complete state (its first snapshot arrived).</summary>
    public bool IsCurrent => _firstSnapshot.Task.IsCompletedSuccessfully;

    /// <summary>Starts the watch; completes once the cache holds the current state.</summary>
    /// <param name="cancellationToken">Stops waiting (the watch goes on until <see cref="DisposeAsync"/>).</param>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _run ??= Task.Run(() => RunAsync(_stop.Token));
        }

        return _firstSnapshot.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Completes when the cache has applied <paramref name="offset"/> (for example one a write returned).</summary>
    /// <param name="offset">A metadata log offset.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public async Task WaitForOffsetAsync(long offset, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task advanced;
            lock (_lock)
            {
                if (_offset >= offset)
                {
                    return;
                }

                advanced = _advanced.Task;
            }

            await advanced.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The names of the topics the cache holds.</summary>
    public IReadOnlyList<string> TopicNames
    {
        get
        {
            lock (_lock)
            {
                return [.. _topics.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>A topic and its partitions as the cache holds them.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="metadata">The topic (without offline replicas: brokers are not held).</param>
    /// <returns>False when the cache does not hold the topic.</returns>
    public bool TryGetTopic(string topic, out TopicMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(topic);
        lock (_lock)
        {
            if (_topics.TryGetValue(topic, out var state))
            {
                metadata = state.Describe(topic);
                return true;
            }
        }

        metadata = null!;
        return false;
    }

    /// <summary>The leader of a partition as the cache holds it (-1 when the partition is offline).</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index.</param>
    /// <param name="leader">The leader and its epoch.</param>
    /// <returns>False when the cache does not hold the partition.</returns>
    public bool TryGetLeader(string topic, int partition, out PartitionLeader leader)
    {
        ArgumentNullException.ThrowIfNull(topic);
        lock (_lock)
        {
            if (_topics.TryGetValue(topic, out var state) && state.Partitions.TryGetValue(partition, out var p))
            {
                leader = new PartitionLeader(p.Leader, p.LeaderEpoch);
                return true;
            }
        }

        leader = default;
        return false;
    }

    /// <summary>The brokers the cache holds (registered, whatever their state), by id.</summary>
    public IReadOnlyList<BrokerInfo> Brokers
    {
        get
        {
            lock (_lock)
            {
                return [.. _brokers.Values.OrderBy(b => b.BrokerId)];
            }
        }
    }

    /// <summary>A registered broker as the cache holds it: its incarnation, epoch, listeners, rack and state.</summary>
    /// <param name="brokerId">The broker id.</param>
    /// <returns>Null when the cache holds no such broker (never registered, or unregistered).</returns>
    public BrokerInfo? GetBroker(int brokerId)
    {
        lock (_lock)
        {
            return _brokers.GetValueOrDefault(brokerId);
        }
    }

    /// <summary>Where the leader of a partition listens: what a producer connects to.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index.</param>
    /// <param name="endpoint">The leader, its epoch, and its listener.</param>
    /// <param name="listenerName">The listener to use (matched ordinally); null for the broker's first.</param>
    /// <returns>False when the cache does not hold the partition, the partition has no leader, the cache does not hold
    /// the leader's broker, or the broker has no such listener.</returns>
    public bool TryGetLeaderEndpoint(string topic, int partition, out LeaderEndpoint endpoint, string? listenerName = null)
    {
        ArgumentNullException.ThrowIfNull(topic);
        lock (_lock)
        {
            if (_topics.TryGetValue(topic, out var state) && state.Partitions.TryGetValue(partition, out var p) && p.Leader >= 0 &&
                _brokers.TryGetValue(p.Leader, out var broker) &&
                (listenerName is null ? broker.Listeners.FirstOrDefault() : broker.Listeners.FirstOrDefault(l => string.Equals(l.Name, listenerName, StringComparison.Ordinal)))
                    is { } listener)
            {
                endpoint = new LeaderEndpoint(broker.BrokerId, p.LeaderEpoch, broker.BrokerEpoch, listener);
                return true;
            }
        }

        endpoint = default;
        return false;
    }

    /// <summary>Stops the watch.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_run is { } run)
        {
            try
            {
                await run.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in _client.WatchAsync(_filter, fromOffset: null, cancellationToken).ConfigureAwait(false))
            {
                Apply(item);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _firstSnapshot.TrySetException(e); // Refused (a bad filter): the watch does not retry that.
            throw;
        }
    }

    private void Apply(WatchEvent item)
    {
        List<TopicMetadata> changed = [];
        List<DeleteTopicResponse> gone = [];
        TaskCompletionSource? advanced = null;
        lock (_lock)
        {
            switch (item.Kind)
            {
                case WatchEventKinds.SnapshotStart:
                    _pending = new Dictionary<string, TopicState>(StringComparer.Ordinal);
                    _pendingBrokers = [];
                    return;
                case WatchEventKinds.Snapshot when _pendingBrokers is not null && item.Type == "broker" && item.Record is { } broker:
                    ApplyBroker(_pendingBrokers, broker, item.Offset);
                    return;
                case WatchEventKinds.Snapshot when _pending is not null && item.Record is { } state:
                    ApplyRecord(_pending, item.Type, state, null);
                    return;
                case WatchEventKinds.SnapshotEnd when _pending is not null:
                    foreach (var (name, old) in _topics)
                    {
                        if (!_pending.TryGetValue(name, out var now) || now.TopicId != old.TopicId)
                        {
                            gone.Add(new DeleteTopicResponse(name, old.TopicId, item.Offset));
                        }
                    }

                    _topics = _pending;
                    _pending = null;
                    _brokers = _pendingBrokers ?? [];
                    _pendingBrokers = null;
                    changed.AddRange(_topics.Select(t => t.Value.Describe(t.Key)));
                    break;
                case WatchEventKinds.Record when item.Type == "broker" && item.Record is { } broker:
                    ApplyBroker(_brokers, broker, item.Offset);
                    break;
                case WatchEventKinds.Record when item.Record is { } record:
                    var names = new HashSet<string>(StringComparer.Ordinal);
                    ApplyRecord(_topics, item.Type, record, (names, gone, item.Offset));
                    changed.AddRange(names.Where(_topics.ContainsKey).Select(n => _topics[n].Describe(n)));
                    break;
                case WatchEventKinds.Progress or WatchEventKinds.Record:
                    break;
                default:
                    return;
            }

            if (item.Offset > _offset && _pending is null)
            {
                _offset = item.Offset;
                advanced = _advanced;
                _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        foreach (var deleted in gone)
        {
            _client.Leaders.Update(deleted);
        }

        if (changed.Count > 0)
        {
            _client.Leaders.Update(new MetadataResponse([], changed, new ControllerInfo(null, 0), item.Offset));
        }

        advanced?.TrySetResult();
        if (item.Kind == WatchEventKinds.SnapshotEnd)
        {
            _firstSnapshot.TrySetResult();
        }
    }

    /// <summary>Applies a topic or partition record as the silos' images do.</summary>
    private static void ApplyRecord(
        Dictionary<string, TopicState> topics,
        string? type,
        JsonElement record,
        (HashSet<string> Changed, List<DeleteTopicResponse> Gone, long Offset)? report)
    {
        if (type == "topic")
        {
            var name = record.GetProperty("name").GetString()!;
            var id = record.GetProperty("topicId").GetGuid();
            var exists = topics.TryGetValue(name, out var current);
            if (record.TryGetProperty("deleted", out var deleted) && deleted.GetBoolean())
            {
                if (exists && current!.TopicId == id)
                {
                    topics.Remove(name);
                    report?.Gone.Add(new DeleteTopicResponse(name, id, report.Value.Offset));
                }

                return;
            }

            if (!exists || current!.TopicId != id)
            {
                if (exists)
                {
                    report?.Gone.Add(new DeleteTopicResponse(name, current!.TopicId, report.Value.Offset));
                }

                current = new TopicState(id, []);
                topics[name] = current;
            }

            // Partitions already held keep their state; those the record adds take their initial one.
            foreach (var p in record.GetProperty("initialPartitions").EnumerateArray())
            {
                current.Partitions.TryAdd(p.GetProperty("partition").GetInt32(), Partition(p));
            }

            report?.Changed.Add(name);
        }
        else if (type == "partition")
        {
            var name = record.GetProperty("topic").GetString()!;
            var id = record.GetProperty("topicId").GetGuid();
            if (!topics.TryGetValue(name, out var current) || current.TopicId != id)
            {
                topics[name] = current = new TopicState(id, []);
            }

            var state = Partition(record.GetProperty("state"));
            current.Partitions[state.Partition] = state;
            report?.Changed.Add(name);
        }
    }

    /// <summary>Applies a broker record as the silos' images do: an unregistered broker is dropped; a registered one
    /// whose record carries no epoch yet gets the record's own offset, as its epoch is.</summary>
    private static void ApplyBroker(Dictionary<int, BrokerInfo> brokers, JsonElement record, long offset)
    {
        var id = record.GetProperty("brokerId").GetInt32();
        var change = record.TryGetProperty("change", out var c) ? c.GetString() : null;
        if (change == "unregistered")
        {
            brokers.Remove(id);
            return;
        }

        var epoch = record.GetProperty("brokerEpoch").GetInt64();
        if (epoch == 0 && change == "registered")
        {
            epoch = offset;
        }

        brokers[id] = new BrokerInfo(
            id,
            record.GetProperty("incarnationId").GetGuid(),
            epoch,
            [.. record.GetProperty("listeners").EnumerateArray().Select(l => new BrokerListener(
                l.GetProperty("name").GetString()!,
                l.GetProperty("host").GetString()!,
                l.GetProperty("port").GetInt32(),
                l.TryGetProperty("securityProtocol", out var protocol) && protocol.GetString() is { } p ? p : "PLAINTEXT"))],
            record.TryGetProperty("rack", out var rack) && rack.ValueKind == JsonValueKind.String ? rack.GetString() : null,
            record.GetProperty("state").GetString()!);
    }

    private static PartitionInfo Partition(JsonElement p) => new(
        p.GetProperty("partition").GetInt32(),
        p.GetProperty("leader").GetInt32(),
        p.GetProperty("leaderEpoch").GetInt32(),
        p.GetProperty("partitionEpoch").GetInt32(),
        [.. p.GetProperty("replicas").EnumerateArray().Select(r => r.GetInt32())],
        [.. p.GetProperty("isr").EnumerateArray().Select(r => r.GetInt32())]);

    private sealed record TopicState(Guid TopicId, Dictionary<int, PartitionInfo> Partitions)
    {
        public TopicMetadata Describe(string name) => new(name, TopicId, null, [.. Partitions.Values.OrderBy(p => p.Partition)]);
    }
}

/// <summary>Where a partition's leader listens, as a <see cref="MetadataCache"/> holds it.</summary>
/// <param name="BrokerId">The leader.</param>
/// <param name="LeaderEpoch">The partition's leader epoch.</param>
/// <param name="BrokerEpoch">The leader's broker epoch (its current incarnation).</param>
/// <param name="Listener">The leader's listener: name, host, port and security protocol.</param>
public readonly record struct LeaderEndpoint(int BrokerId, int LeaderEpoch, long BrokerEpoch, BrokerListener Listener);
