using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>What a <see cref="GroupConsumer"/> subscribes to and how it identifies itself.</summary>
public sealed class GroupConsumerOptions
{
    /// <summary>The consumer group to join. Required.</summary>
    public string GroupId { get; set; } = "";

    /// <summary>Topic names to consume. Either this or <see cref="TopicRegex"/> is required.</summary>
    public IReadOnlyList<string>? Topics { get; set; }

    /// <summary>A regular expression that whole topic names must match; topics created later that match are picked up.</summary>
    public string? TopicRegex { get; set; }

    /// <summary>A static member's id (Kafka's group.instance.id): a restart within the session keeps its assignment.</summary>
    public string? InstanceId { get; set; }

    /// <summary>The consumer's rack, for rack-aware assignors.</summary>
    public string? RackId { get; set; }

    /// <summary>The server-side assignor to ask for (<c>uniform</c> or <c>range</c>); the group's default when null.</summary>
    public string? ServerAssignor { get; set; }

    /// <summary>This process's member id. Default: a new UUID.</summary>
    public string MemberId { get; set; } = Guid.NewGuid().ToString();
}

/// <summary>A change of what this consumer owns: the partitions it gained or must give up.</summary>
public sealed record AssignmentChange(IReadOnlyList<(string Topic, int Partition)> Partitions, int MemberEpoch);

/// <summary>
/// A consumer's membership in a group (KIP-848): joins, heartbeats on the interval the group asks for, applies each
/// answer (revoked partitions first, then assigned ones, as events), and acknowledges revocations by heartbeating at
/// once without them. Commits carry the current member epoch. Fenced or forgotten, it gives up everything and joins
/// again. Disposing it leaves the group (a static member leaves for a moment, keeping its assignment).
/// </summary>
public sealed class GroupConsumer : IAsyncDisposable
{
    private readonly IMetaClient _client;
    private readonly GroupConsumerOptions _options;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private Dictionary<(string Topic, int Partition), Guid> _owned = [];
    private int _epoch;
    private bool _subscriptionSent;
    private Task? _loop;
    private bool _abandoned;

    /// <summary>A consumer that joins <see cref="GroupConsumerOptions.GroupId"/> through <paramref name="client"/> once started.</summary>
    public GroupConsumer(IMetaClient client, GroupConsumerOptions options)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.GroupId);
        if (options.Topics is null && options.TopicRegex is null)
        {
            throw new ArgumentException("Set Topics or TopicRegex: a member must subscribe to something.", nameof(options));
        }

        _client = client;
        _options = options;
    }

    /// <summary>Partitions given to this consumer; handle them before the next heartbeat.</summary>
    public event Action<AssignmentChange>? PartitionsAssigned;

    /// <summary>Partitions this consumer must stop consuming (commit first if needed); the next heartbeat acknowledges them.</summary>
    public event Action<AssignmentChange>? PartitionsRevoked;

    /// <summary>Raised when the group fenced or forgot this member: everything it owned is lost and it joins again.</summary>
    public event Action<MetaApiException>? Fenced;

    /// <summary>This member's id in the group.</summary>
    public string MemberId => _options.MemberId;

    /// <summary>The member epoch of the last answer (0 before joining).</summary>
    public int MemberEpoch => Volatile.Read(ref _epoch);

    /// <summary>What this consumer owns now.</summary>
    public IReadOnlyList<(string Topic, int Partition)> Assignment
    {
        get
        {
            lock (_lock)
            {
                return [.. _owned.Keys.Order()];
            }
        }
    }

    /// <summary>Joins the group (one heartbeat) and keeps heartbeating in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var interval = await HeartbeatAsync(cancellationToken).ConfigureAwait(false);
        _loop = Task.Run(() => LoopAsync(interval), CancellationToken.None);
    }

    /// <summary>Commits offsets of partitions this consumer owns, with its current member epoch; durable when it returns.</summary>
    public Task<CommitOffsetsResponse> CommitAsync(IReadOnlyList<PartitionOffset> offsets, CancellationToken cancellationToken = default)
        => _client.CommitOffsetsAsync(_options.GroupId, new CommitOffsetsRequest(MemberId, MemberEpoch, offsets), cancellationToken);

    /// <summary>Stops heartbeating without leaving, as a process that died would: the group removes this member once its
    /// session expires. For tests and tools that need to show that; a consumer that stops should dispose instead.</summary>
    /// <param name="cancellationToken">Stops waiting for the heartbeat loop to end (it ends anyway).</param>
    public async Task AbandonAsync(CancellationToken cancellationToken = default)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            await loop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        _loop = null;
        _abandoned = true;
    }

    /// <summary>Stops heartbeating and leaves the group.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            await loop.ConfigureAwait(false);
        }

        if (_abandoned)
        {
            _stop.Dispose();
            return;
        }

        try
        {
            var leaveEpoch = _options.InstanceId is null ? -1 : -2;
            await _client.SendGroupHeartbeatAsync(_options.GroupId, new GroupHeartbeatRequest(MemberId, leaveEpoch, _options.InstanceId)).ConfigureAwait(false);
        }
        catch (MetaApiException)
        {
            // The group removes a silent member after its session timeout anyway.
        }

        _stop.Dispose();
    }

    private async Task LoopAsync(TimeSpan interval)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                interval = await HeartbeatAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (MetaApiException exception) when (exception.Code is ErrorCodes.FencedMemberEpoch or ErrorCodes.UnknownMemberId)
            {
                LoseEverything(exception);
                interval = TimeSpan.Zero;
            }
            catch (MetaApiException)
            {
                // Retryable or not, the next heartbeat tries again; the session outlives a few lost ones.
                interval = TimeSpan.FromMilliseconds(500);
            }
        }
    }

    /// <summary>Sends one heartbeat and applies its answer; returns how long to wait before the next.</summary>
    private async Task<TimeSpan> HeartbeatAsync(CancellationToken cancellationToken)
    {
        List<GroupTopicPartitions> owned;
        lock (_lock)
        {
            owned = [.. _owned.GroupBy(p => (p.Key.Topic, p.Value)).Select(g => new GroupTopicPartitions(g.Key.Value, g.Key.Topic, [.. g.Select(p => p.Key.Partition)]))];
        }

        var epoch = MemberEpoch;
        var full = epoch == 0 || !_subscriptionSent;
        var request = new GroupHeartbeatRequest(
            MemberId, epoch, _options.InstanceId, _options.RackId, ClientId: "orleans-meta-sdk",
            SubscribedTopicNames: full ? _options.Topics : null,
            SubscribedTopicRegex: full ? _options.TopicRegex : null,
            ServerAssignor: full ? _options.ServerAssignor : null,
            OwnedPartitions: owned);
        var response = await _client.SendGroupHeartbeatAsync(_options.GroupId, request, cancellationToken).ConfigureAwait(false);
        _subscriptionSent = true;
        var revokedAny = Apply(response);
        return revokedAny ? TimeSpan.Zero : TimeSpan.FromMilliseconds(response.HeartbeatIntervalMs);
    }

    /// <summary>Revokes what the answer no longer lists, then takes what it added. Returns whether anything was revoked
    /// (the next heartbeat then goes at once, to acknowledge it).</summary>
    private bool Apply(GroupHeartbeatResponse response)
    {
        var next = response.Assignment.SelectMany(t => t.Partitions.Select(p => ((t.Topic, p), t.TopicId))).ToDictionary(x => x.Item1, x => x.TopicId);
        List<(string, int)> revoked, assigned;
        lock (_lock)
        {
            revoked = [.. _owned.Keys.Where(k => !next.ContainsKey(k)).Order()];
            assigned = [.. next.Keys.Where(k => !_owned.ContainsKey(k)).Order()];
        }

        if (revoked.Count > 0)
        {
            PartitionsRevoked?.Invoke(new AssignmentChange(revoked, response.MemberEpoch));
        }

        lock (_lock)
        {
            _owned = next;
        }

        Volatile.Write(ref _epoch, response.MemberEpoch);
        if (assigned.Count > 0)
        {
            PartitionsAssigned?.Invoke(new AssignmentChange(assigned, response.MemberEpoch));
        }

        return revoked.Count > 0;
    }

    private void LoseEverything(MetaApiException exception)
    {
        List<(string, int)> lost;
        lock (_lock)
        {
            lost = [.. _owned.Keys.Order()];
            _owned = [];
        }

        if (lost.Count > 0)
        {
            PartitionsRevoked?.Invoke(new AssignmentChange(lost, MemberEpoch));
        }

        Volatile.Write(ref _epoch, 0);
        Fenced?.Invoke(exception);
    }
}
