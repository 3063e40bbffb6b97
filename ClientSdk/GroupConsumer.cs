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

    /// <summary>
    /// Whether positions given to <see cref="GroupConsumer.StoreOffset"/> are committed without being asked (Kafka's
    /// <c>enable.auto.commit</c>): every <see cref="AutoCommitInterval"/>, for a revoked partition before its revocation
    /// is acknowledged (so the next owner starts where this one stopped), and when the consumer leaves. Default: true.
    /// </summary>
    public bool EnableAutoCommit { get; set; } = true;

    /// <summary>How often stored positions are committed when <see cref="EnableAutoCommit"/> is on (Kafka's
    /// <c>auto.commit.interval.ms</c>). Default: 5 seconds.</summary>
    public TimeSpan AutoCommitInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>A change of what this consumer owns: the partitions it gained or must give up.</summary>
public sealed record AssignmentChange(IReadOnlyList<(string Topic, int Partition)> Partitions, int MemberEpoch);

/// <summary>
/// A consumer's membership in a group (KIP-848): joins, heartbeats on the interval the group asks for, applies each
/// answer (revoked partitions first, then assigned ones, as events), and acknowledges revocations by heartbeating at
/// once without them. Commits carry the current member epoch. Fenced or forgotten, it gives up everything and joins
/// again. Disposing it leaves the group (a static member leaves for a moment, keeping its assignment).
/// <para>
/// Positions: the application stores the offset of the next record to read of each partition it owns
/// (<see cref="StoreOffset"/>) and the consumer commits them (see <see cref="GroupConsumerOptions.EnableAutoCommit"/>),
/// or it commits what it likes itself with <see cref="CommitAsync"/>. A revoked partition's position is committed after
/// <see cref="PartitionsRevoked"/> has run (a handler may store a last position) and before the revocation is
/// acknowledged; a lost partition's (fenced member) is dropped, as its commit would be refused.
/// </para>
/// </summary>
public sealed class GroupConsumer : IAsyncDisposable
{
    private readonly IMetaClient _client;
    private readonly GroupConsumerOptions _options;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();

    // Held by whatever commits stored positions or changes what is owned, so that a commit's partitions and member
    // epoch are taken together and commits of one partition land in the order they were stored.
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly Dictionary<(string Topic, int Partition), StoredPosition> _positions = [];
    private Dictionary<(string Topic, int Partition), Guid> _owned = [];
    private int _epoch;
    private bool _subscriptionSent;
    private Task? _loop;
    private Task? _autoCommitLoop;
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

        if (options.EnableAutoCommit && options.AutoCommitInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("AutoCommitInterval must be positive when EnableAutoCommit is on.", nameof(options));
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

    /// <summary>Raised when committing stored positions failed (automatically or on revocation); they stay stored and are
    /// tried again at the next interval while the partition is owned.</summary>
    public event Action<MetaApiException>? CommitFailed;

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
        if (_options.EnableAutoCommit)
        {
            _autoCommitLoop = Task.Run(AutoCommitLoopAsync, CancellationToken.None);
        }
    }

    /// <summary>Commits offsets of partitions this consumer owns, with its current member epoch; durable when it returns.</summary>
    public Task<CommitOffsetsResponse> CommitAsync(IReadOnlyList<PartitionOffset> offsets, CancellationToken cancellationToken = default)
        => _client.CommitOffsetsAsync(_options.GroupId, new CommitOffsetsRequest(MemberId, MemberEpoch, offsets), cancellationToken);

    /// <summary>
    /// Stores the position of a partition this consumer owns: <paramref name="offset"/> is the next record to read (one
    /// past the last one processed), which is what a commit records. Committed with the other stored positions by
    /// <see cref="CommitStoredAsync"/> or automatically. Returns false, storing nothing, when the partition is not owned
    /// (it was revoked or lost meanwhile: its next owner reads from the last commit).
    /// </summary>
    public bool StoreOffset(string topic, int partition, long offset)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        lock (_lock)
        {
            if (!_owned.ContainsKey((topic, partition)))
            {
                return false;
            }

            var stored = _positions.GetValueOrDefault((topic, partition));
            _positions[(topic, partition)] = new StoredPosition(offset, stored.Version + 1, stored.CommittedVersion);
            return true;
        }
    }

    /// <summary>The positions stored and not yet committed, by partition.</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), long> UncommittedPositions
    {
        get
        {
            lock (_lock)
            {
                return _positions.Where(p => !p.Value.IsCommitted).ToDictionary(p => p.Key, p => p.Value.Offset);
            }
        }
    }

    /// <summary>
    /// Commits every stored position not yet committed, in one call with the current member epoch; durable when it
    /// returns. Returns how many partitions it committed (0 when nothing was waiting).
    /// </summary>
    public async Task<int> CommitStoredAsync(CancellationToken cancellationToken = default)
    {
        await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CommitStoredLockedAsync(partitions: null, MemberEpoch, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _commitGate.Release();
        }
    }

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

        if (_autoCommitLoop is { } autoCommit)
        {
            await autoCommit.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        _loop = null;
        _autoCommitLoop = null;
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

        if (_autoCommitLoop is { } autoCommit)
        {
            await autoCommit.ConfigureAwait(false);
        }

        if (_abandoned)
        {
            _stop.Dispose();
            _commitGate.Dispose();
            return;
        }

        if (_options.EnableAutoCommit && MemberEpoch > 0)
        {
            // Kafka's consumer commits on close too: what was processed is not read again by the next owner.
            try
            {
                await CommitStoredAsync().ConfigureAwait(false);
            }
            catch (MetaApiException exception)
            {
                CommitFailed?.Invoke(exception);
            }
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
        _commitGate.Dispose();
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

    private async Task AutoCommitLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.AutoCommitInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await CommitStoredAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (MetaApiException exception)
                {
                    CommitFailed?.Invoke(exception);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Commits stored, uncommitted positions of <paramref name="partitions"/> (every owned partition when null) with
    /// <paramref name="epoch"/>. Called with the commit gate held. A commit refused as STALE_MEMBER_EPOCH (a heartbeat
    /// moved the epoch while it was on its way) is sent once more with the epoch now current, as Kafka's consumer does.
    /// </summary>
    private async Task<int> CommitStoredLockedAsync(IReadOnlyCollection<(string Topic, int Partition)>? partitions, int epoch, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var batch = new List<(string Topic, int Partition, StoredPosition Position)>();
            lock (_lock)
            {
                foreach (var (topic, partition) in partitions ?? [.. _positions.Keys])
                {
                    if (_positions.TryGetValue((topic, partition), out var position) && !position.IsCommitted)
                    {
                        batch.Add((topic, partition, position));
                    }
                }
            }

            if (batch.Count == 0 || epoch <= 0)
            {
                return 0;
            }

            try
            {
                await _client.CommitOffsetsAsync(_options.GroupId, new CommitOffsetsRequest(MemberId, epoch,
                    [.. batch.Select(p => new PartitionOffset(p.Topic, p.Partition, p.Position.Offset))]), cancellationToken).ConfigureAwait(false);
            }
            catch (MetaApiException exception) when (exception.Code == ErrorCodes.StaleMemberEpoch && attempt == 1 && partitions is null)
            {
                epoch = MemberEpoch;
                continue;
            }

            lock (_lock)
            {
                foreach (var (topic, partition, position) in batch)
                {
                    // Stored again meanwhile: the newer position still waits for its commit.
                    if (_positions.TryGetValue((topic, partition), out var now))
                    {
                        _positions[(topic, partition)] = now with { CommittedVersion = Math.Max(now.CommittedVersion, position.Version) };
                    }
                }
            }

            return batch.Count;
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
        var revokedAny = await ApplyAsync(response, cancellationToken).ConfigureAwait(false);
        return revokedAny ? TimeSpan.Zero : TimeSpan.FromMilliseconds(response.HeartbeatIntervalMs);
    }

    /// <summary>Revokes what the answer no longer lists (committing their stored positions), then takes what it added.
    /// Returns whether anything was revoked (the next heartbeat then goes at once, to acknowledge it).</summary>
    private async Task<bool> ApplyAsync(GroupHeartbeatResponse response, CancellationToken cancellationToken)
    {
        var next = response.Assignment.SelectMany(t => t.Partitions.Select(p => ((t.Topic, p), t.TopicId))).ToDictionary(x => x.Item1, x => x.TopicId);
        List<(string, int)> revoked, assigned;
        lock (_lock)
        {
            // Only the heartbeat loop changes what is owned, so this stays true until the change below.
            revoked = [.. _owned.Keys.Where(k => !next.ContainsKey(k)).Order()];
            assigned = [.. next.Keys.Where(k => !_owned.ContainsKey(k)).Order()];
        }

        // The application's handlers run outside the commit gate, so one that commits does not wait on itself.
        if (revoked.Count > 0)
        {
            PartitionsRevoked?.Invoke(new AssignmentChange(revoked, response.MemberEpoch));
        }

        MetaApiException? commitFailure = null;
        await _commitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (revoked.Count > 0 && _options.EnableAutoCommit)
            {
                // Still this member's epoch until the next heartbeat acknowledges the revocation, so the commit is
                // accepted; the partitions' next owner gets them only after that acknowledgement, and reads from here.
                try
                {
                    await CommitStoredLockedAsync(revoked, response.MemberEpoch, cancellationToken).ConfigureAwait(false);
                }
                catch (MetaApiException exception)
                {
                    // Given up anyway: the next owner reads from the last commit (at least once, never skipped).
                    commitFailure = exception;
                }
            }

            lock (_lock)
            {
                _owned = next;
                foreach (var partition in revoked)
                {
                    _positions.Remove(partition);
                }
            }

            Volatile.Write(ref _epoch, response.MemberEpoch);
        }
        finally
        {
            _commitGate.Release();
        }

        if (commitFailure is not null)
        {
            CommitFailed?.Invoke(commitFailure);
        }

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
            _positions.Clear(); // A fenced member's commits are refused: the next owners read from the last commit.
        }

        if (lost.Count > 0)
        {
            PartitionsRevoked?.Invoke(new AssignmentChange(lost, MemberEpoch));
        }

        Volatile.Write(ref _epoch, 0);
        Fenced?.Invoke(exception);
    }

    /// <summary>A stored position: <see cref="Version"/> counts stores, <see cref="CommittedVersion"/> is the last one committed.</summary>
    private readonly record struct StoredPosition(long Offset, long Version, long CommittedVersion)
    {
        public bool IsCommitted => CommittedVersion >= Version;
    }
}
