using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Runtime.Cluster.PostgreSql;

/// <summary>
/// Cluster membership on a PostgreSQL table, like Orleans' membership protocol: silos join by probing every active
/// silo, heartbeat their row, probe each other, vote a silent peer dead, and push every change they make to their
/// peers so that views converge at once instead of on the next periodic read.
/// </summary>
/// <remarks>
/// Host order. Start: schema migration (registered first by <c>AddPostgresGrainStorage</c>), then this service joins
/// (start-up fails if it cannot), then the grain runtime and the server. Stop, all in <see cref="StoppingAsync"/>,
/// before any hosted service stops: <see cref="BeginLeaveAsync"/>, so peers stop routing to this silo; the leave drains
/// (peers' calls still arriving, then the grains deactivating), while the endpoints stay open; then
/// <see cref="LeaveAsync"/> marks the row Dead. Only then does the server stop, so a request it is still finishing
/// can reach its grains on their new owners. <see cref="StopAsync"/> leaves too, for hosts that skip the stopping
/// phase. A host may call both itself; each runs once.
/// All liveness decisions use the database's clock; the silo's clock is only used to wait.
/// </remarks>
public sealed partial class PostgresClusterMembership : IClusterMembership, Persistence.IWriterFence, IHostedLifecycleService, IAsyncDisposable
{
    private readonly MembershipTable _table;
    private readonly MembershipPeers _peers;
    private readonly MembershipOptions _options;
    private readonly ClusterOptions _cluster;
    private readonly IHostApplicationLifetime _lifetime;
    private static readonly TimeSpan LastLeaveWriteTimeout = TimeSpan.FromSeconds(5);

    // A leaving silo answers "released" once the grain's last turn is done, which may take a while: ask with a long
    // bound, and between refusals (not leaving yet in its own eyes, unreachable) back off up to a second.
    private static readonly TimeSpan ReleaseAskTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ReleaseAskMaxPause = TimeSpan.FromSeconds(1);

    // Whether a peer has handed over everything a newcomer owns is answered from memory: a short wait, then ask per grain.
    private static readonly TimeSpan HandOverCheckTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan HandOverRecheckAfter = TimeSpan.FromMilliseconds(100);

    // How many times a silo asks a peer in the background whether it has handed over, 100 ms apart at least.
    private const int HandOverChaseAttempts = 100;

    // A hand-over wait this long is logged: a grain's calls waited that long on its previous owner.
    private static readonly TimeSpan SlowHandOver = TimeSpan.FromSeconds(1);
    private readonly HandOverStatistics _handOverStatistics = new();
    private readonly IJoinGate[] _joinGates;
    private readonly ILeaveDrain[] _leaveDrains;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _viewLock = new();
    private readonly CancellationTokenSource _loopsStopping = new();
    private readonly List<Task> _loops = [];
    private readonly SemaphoreSlim _leaveLock = new(1, 1);

    /// <summary>Peers that told this incarnation (the first of the pair) they hold none of its grains and never will
    /// while it is active (<see cref="WaitForJoinHandOverAsync"/>).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(SiloAddress Self, SiloAddress Peer), bool> _handedOver = new();

    /// <summary>Peers this incarnation is asking in the background whether they have handed over (<see cref="AskPeersToHandOver"/>).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(SiloAddress Self, SiloAddress Peer), bool> _handOverChases = new();

    /// <summary>The question to a peer whether it has handed over everything, in flight or just answered "not yet".</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(SiloAddress Self, SiloAddress Peer), Lazy<Task<bool>>> _handOverChecks = new();
    private volatile MembershipView _view = MembershipView.Empty;
    private TaskCompletionSource _viewPublished = NewViewSignal();
    private volatile SiloAddress? _self;
    private long _registeredAtVersion = long.MaxValue;
    private long _leaseStart;
    private volatile bool _leaving;
    private volatile bool _left;
    private volatile bool _readSelfDead;
    private volatile bool _isolated;
    private volatile bool _crashed;
    private int _disposed;

    public PostgresClusterMembership(
        NpgsqlDataSource dataSource,
        IOptions<PostgresStorageOptions> storageOptions,
        IOptions<ClusterOptions> clusterOptions,
        IOptions<MembershipOptions> options,
        SiloHttpClient client,
        IHostApplicationLifetime lifetime,
        TimeProvider timeProvider,
        ILogger<PostgresClusterMembership> logger,
        IEnumerable<IJoinGate>? joinGates = null,
        IEnumerable<ILeaveDrain>? leaveDrains = null)
    {
        ArgumentNullException.ThrowIfNull(storageOptions);
        ArgumentNullException.ThrowIfNull(clusterOptions);
        ArgumentNullException.ThrowIfNull(options);
        _table = new MembershipTable(dataSource, storageOptions.Value.ClusterId);
        _peers = new MembershipPeers(client, timeProvider);
        _options = options.Value;
        _cluster = clusterOptions.Value;
        _lifetime = lifetime;
        _joinGates = [.. joinGates ?? []];
        _leaveDrains = [.. leaveDrains ?? []];
        _time = timeProvider;
        _logger = logger;
    }

    public SiloAddress? Self => _self;

    /// <summary>Grain state writes of this process are fenced by this silo's row (see <see cref="Persistence.IWriterFence"/>).</summary>
    SiloAddress? Persistence.IWriterFence.Writer => _self;

    public MembershipView CurrentView => _view;

    public bool IsLeaving => _leaving;

    public bool IsActive => _self is { } self && !_leaving && !_readSelfDead && !_isolated && HasLease && _view.IsActive(self);

    /// <summary>
    /// The ownership lease: this silo may act as the owner of its grains only while its last successful heartbeat was
    /// sent less than <see cref="MembershipOptions.HeartbeatStaleAfter"/> ago. It counts from when that heartbeat was
    /// sent, which is before the database stamped it, so it always ends before peers (judging on the database's clock)
    /// consider the silo's heartbeat stale. Checked on every use rather than by a timer, so a process that was paused
    /// (SIGSTOP, a long GC) knows at once on resuming that it may no longer own anything.
    /// </summary>
    private bool HasLease => _time.GetElapsedTime(Interlocked.Read(ref _leaseStart)) < _options.HeartbeatStaleAfter;

    /// <inheritdoc />
    /// <remarks>
    /// Only silos declared dead by votes matter: one that left gracefully deactivated its grains first, and one declared
    /// dead for a stale heartbeat has no lease left by definition. All silos must share HeartbeatStaleAfter.
    /// </remarks>
    public async Task WaitForDeadSilosLeasesAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.HeartbeatInterval * 2);
        var view = await _table.ReadAsync(deadline.Token).ConfigureAwait(false);
        var readAt = _time.GetTimestamp();
        var leaseEnd = view.Silos
            .Where(s => s.Status == SiloStatus.Dead && s.Suspicions.Count > 0 && s.Address != _self)
            .Select(s => s.HeartbeatAt + _options.HeartbeatStaleAfter)
            .DefaultIfEmpty(DateTimeOffset.MinValue)
            .Max();
        var remaining = leaseEnd - view.ReadAt - _time.GetElapsedTime(readAt);
        if (remaining > TimeSpan.Zero)
        {
            LogWaitingForLease(_logger, remaining);
            await Task.Delay(remaining, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    public event Action<MembershipView>? ViewChanged;

    /// <summary>What this silo's activations have asked of and waited for from a grain's previous owner since it started.</summary>
    public HandOverStatistics HandOver => _handOverStatistics;

    public async Task<MembershipView> RefreshAsync(CancellationToken cancellationToken = default)
    {
        Publish(await _table.ReadAsync(cancellationToken).ConfigureAwait(false));
        return _view;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Registers this silo as Joining and starts heartbeating; it owns no grains yet.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var sent = _time.GetTimestamp();
        var (self, version) = await _table.InsertJoiningAsync(NormalizedEndpoint(), _cluster.SiloName, _cluster.ClientUrl, cancellationToken).ConfigureAwait(false);
        Interlocked.Exchange(ref _leaseStart, sent);
        Interlocked.Exchange(ref _registeredAtVersion, version);
        _self = self;
        LogRegistered(_logger, self, _table.ClusterId);
        StartLoop(HeartbeatLoopAsync, "heartbeat");
    }

    /// <summary>
    /// Turns Active once every hosted service has started, the web server included: peers start probing an Active silo
    /// at once, and a silo whose port is not yet open would be voted dead while it is still starting.
    /// </summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        var self = _self ?? throw new InvalidOperationException("StartAsync registers the silo before StartedAsync.");
        try
        {
            // A silo owns grains only once it can decide on current metadata (DESIGN: decide on a current image).
            foreach (var gate in _joinGates)
            {
                LogJoinGate(_logger, self, gate.Description);
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await JoinAsync(self, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception)
        {
            LogJoinFailed(_logger, self, exception);

            // Leaving, so that marking its own row Dead below is not taken for being declared dead by peers.
            _leaving = true;
            await _loopsStopping.CancelAsync().ConfigureAwait(false);
            await AbandonAsync(self).ConfigureAwait(false);
            throw;
        }

        StartLoop(ProbeLoopAsync, "probe");
        StartLoop(RefreshLoopAsync, "refresh");
    }

    /// <summary>
    /// Runs before any hosted service stops, the web server included: marks this silo ShuttingDown and tells every
    /// peer, waits for the leave drains (peers' calls routed on older views, then this silo's grains deactivating),
    /// and marks it Dead. New owners load its grains once the row is Dead, so this must not wait for the web server,
    /// whose in-flight requests may themselves wait for those new owners.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await BeginLeaveAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            LogLeaveFailed(_logger, SiloStatus.ShuttingDown, exception);
            return;
        }

        if (_self is not { } self || !_leaving || _crashed || _readSelfDead)
        {
            return;
        }

        foreach (var drain in _leaveDrains)
        {
            LogLeaveDrain(_logger, self, drain.Description);
            try
            {
                if (!await drain.WaitAsync(cancellationToken).ConfigureAwait(false))
                {
                    LogLeaveDrainTimedOut(_logger, self, drain.Description);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                LogLeaveDrainTimedOut(_logger, self, drain.Description);
                break;
            }
        }

        await StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await LeaveAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            LogLeaveFailed(_logger, SiloStatus.Dead, exception);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// First step of a graceful stop: marks this silo ShuttingDown (it stops being active and owns no grains) and
    /// tells every peer at once. Call before the grain runtime deactivates grains. Idempotent.
    /// </summary>
    public async Task BeginLeaveAsync(CancellationToken cancellationToken = default)
    {
        if (_self is not { } self || _crashed || _readSelfDead)
        {
            return;
        }

        _leaving = true;
        await _leaveLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        MembershipView? changed;
        try
        {
            changed = await ChangeAsync(
                view => view.Find(self) is { Status: SiloStatus.Joining or SiloStatus.Active }
                    ? v => _table.TrySetStatusAsync(v, self, SiloStatus.ShuttingDown, cancellationToken)
                    : null,
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _leaveLock.Release();
        }

        if (changed is not null)
        {
            LogLeaving(_logger, self);
        }
    }

    /// <summary>
    /// Last step of a graceful stop: stops heartbeats and probes, marks this silo Dead and tells every peer at once.
    /// Call after the grain runtime has deactivated its grains. Runs <see cref="BeginLeaveAsync"/> first if it has not
    /// run. Idempotent.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        if (_self is not { } self || _crashed || _left)
        {
            return;
        }

        // Past the host's stop timeout, marking the row Dead still gets a few seconds of its own: otherwise new owners
        // wait for this silo's heartbeat to go stale before they load its grains.
        using var ownDeadline = cancellationToken.IsCancellationRequested ? new CancellationTokenSource(LastLeaveWriteTimeout, _time) : null;
        var token = ownDeadline?.Token ?? cancellationToken;
        try
        {
            await BeginLeaveAsync(token).ConfigureAwait(false);
        }
        finally
        {
            // Whatever happens to the writes, a leaving silo heartbeats no more, so that its row goes stale.
            await StopLoopsAsync().ConfigureAwait(false);
        }

        await _leaveLock.WaitAsync(token).ConfigureAwait(false);
        try
        {
            if (!_readSelfDead)
            {
                await ChangeAsync(
                    view => view.Find(self) is { Status: not SiloStatus.Dead }
                        ? v => _table.TrySetStatusAsync(v, self, SiloStatus.Dead, token)
                        : null,
                    token).ConfigureAwait(false);
            }

            _left = true;
        }
        finally
        {
            _leaveLock.Release();
        }

        LogLeft(_logger, self);
    }

    public async ValueTask DisposeAsync()
    {
        // The container disposes this once per registration that hands it out (itself, the interface, the hosted service).
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopLoopsAsync().ConfigureAwait(false);
        _loopsStopping.Dispose();
        _leaveLock.Dispose();
    }

    /// <summary>Test hook: the silo goes silent as if its process died (no more heartbeats, probes or votes, and no
    /// graceful leave when its host stops). Its peers must find out by probing.</summary>
    internal void SimulateCrash()
    {
        _crashed = true;
        _loopsStopping.Cancel();
    }

    private string NormalizedEndpoint() => new Uri(_cluster.SiloEndpoint).GetLeftPart(UriPartial.Authority);

    private void StartLoop(Func<SiloAddress, CancellationToken, Task> loop, string name)
    {
        var self = _self!;
        var token = _loopsStopping.Token;
        lock (_loops)
        {
            _loops.Add(Task.Run(
                async () =>
                {
                    try
                    {
                        await loop(self, token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested)
                    {
                    }
#pragma warning disable CA1031 // Logged loudly; a dead loop must not take the host down with an unobserved exception.
                    catch (Exception exception)
#pragma warning restore CA1031
                    {
                        LogLoopCrashed(_logger, name, exception);
                    }
                },
                CancellationToken.None));
        }
    }

    private async Task StopLoopsAsync()
    {
        await _loopsStopping.CancelAsync().ConfigureAwait(false);
        Task[] loops;
        lock (_loops)
        {
            loops = [.. _loops];
        }

        // The loops end on cancellation and log their own failures; nothing to observe here.
        await Task.WhenAll(loops).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>A silo that failed to join leaves no Joining row behind for others to clean up.</summary>
    private async Task AbandonAsync(SiloAddress self)
    {
        try
        {
            using var timeout = new CancellationTokenSource(_options.ProbeTimeout * 5, _time);
            await ChangeAsync(
                view => view.Find(self) is { Status: not SiloStatus.Dead } ? v => _table.TrySetStatusAsync(v, self, SiloStatus.Dead, timeout.Token) : null,
                timeout.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            LogLeaveFailed(_logger, SiloStatus.Dead, exception);
        }
    }
}
