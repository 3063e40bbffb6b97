using System.Diagnostics;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// A broker's session with the service, as Kafka's broker lifecycle manager keeps one with the KRaft controller:
/// registers the broker with a new incarnation id, heartbeats on schedule, registers again when the service no longer
/// accepts its epoch, drives a controlled shutdown, and ends loudly (<see cref="Completion"/> faults, <see cref="Error"/>
/// fires) on a failure that retrying cannot fix. One session per broker process.
/// </summary>
/// <remarks>
/// <para>Failures the next call may survive (no silo reachable, timeouts, 503, problems marked retryable) are retried
/// with a backoff that starts at <see cref="BrokerSessionOptions.RetryBaseDelay"/> and stays below the heartbeat
/// interval; each raises <see cref="Error"/> with <see cref="BrokerSessionErrorEventArgs.WillRetry"/> true. A heartbeat
/// answered STALE_BROKER_EPOCH or BROKER_ID_NOT_REGISTERED means the service no longer knows this broker by its epoch:
/// the session registers again with the same incarnation id (so a registration whose answer was lost is not mistaken
/// for a second process) and raises <see cref="Registered"/> with the new epoch. Any other failure
/// (DUPLICATE_BROKER_REGISTRATION because another process holds the broker id, an invalid request, an exception from
/// an event handler or from <see cref="BrokerSessionOptions.AppliedMetadataOffset"/>) ends the session:
/// <see cref="State"/> becomes <see cref="BrokerSessionState.Faulted"/> and <see cref="Completion"/> faults with it.</para>
/// <para>Events are raised on the session's background loop, one at a time. Keep handlers short; a handler that throws
/// faults the session.</para>
/// </remarks>
public sealed class BrokerSession : IAsyncDisposable
{
    private readonly IMetaClient _client;
    private readonly BrokerSessionOptions _options;
    private readonly BrokerRegistrationRequest _registration;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private BrokerSessionState _state = BrokerSessionState.Created;
    private long _epoch = -1;
    private long _serviceOffset = -1;
    private bool _isFenced = true;
    private DateTimeOffset? _lastHeartbeatAt;
    private bool _finished;
    private int _lifecycle; // 0 created, 1 started, 2 stopped before it started
    private ShutdownRequest? _shutdown;

    /// <summary>Creates a session; <see cref="StartAsync"/> registers the broker. Subscribe to the events before that.</summary>
    /// <param name="client">The client the session sends through; it must outlive the session.</param>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="listeners">Where the broker serves clients; at least one.</param>
    /// <param name="rack">The broker's rack, or null when it has none.</param>
    /// <param name="options">The session's settings; copied. Null for the defaults.</param>
    /// <exception cref="ArgumentException">An argument or option is not valid; the message lists every problem.</exception>
    public BrokerSession(IMetaClient client, int brokerId, IReadOnlyList<BrokerListener> listeners, string? rack = null, BrokerSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(listeners);
        if (listeners.Count == 0 || listeners.Any(l => l is null))
        {
            throw new ArgumentException("At least one listener is required, and none may be null.", nameof(listeners));
        }

        _options = (options ?? new BrokerSessionOptions()).Copy();
        var problems = _options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(
                $"The BrokerSession options are not valid:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}",
                nameof(options));
        }

        _client = client;
        BrokerId = brokerId;
        IncarnationId = Guid.NewGuid();
        _registration = new BrokerRegistrationRequest(IncarnationId, [.. listeners], rack);
    }

    /// <summary>The state moved (registered, fenced, unfenced, shutting down, stopped, faulted).</summary>
    public event EventHandler<BrokerSessionStateChangedEventArgs>? StateChanged;

    /// <summary>The broker was registered: first by <see cref="StartAsync"/>, then again each time the service stopped
    /// accepting its epoch (<see cref="BrokerRegisteredEventArgs.IsReRegistration"/>). Whatever the broker did under the
    /// old epoch no longer counts.</summary>
    public event EventHandler<BrokerRegisteredEventArgs>? Registered;

    /// <summary>A registration or heartbeat failed; <see cref="BrokerSessionErrorEventArgs.WillRetry"/> says whether
    /// the session carries on.</summary>
    public event EventHandler<BrokerSessionErrorEventArgs>? Error;

    /// <summary>The broker id.</summary>
    public int BrokerId { get; }

    /// <summary>This process's incarnation id: new for every session, kept across its re-registrations.</summary>
    public Guid IncarnationId { get; }

    /// <summary>The current broker epoch, or -1 before the first registration.</summary>
    public long BrokerEpoch
    {
        get
        {
            lock (_lock)
            {
                return _epoch;
            }
        }
    }

    /// <summary>Where the session stands.</summary>
    public BrokerSessionState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Whether the broker is fenced, as the last heartbeat answer said (true before the first one).</summary>
    public bool IsFenced
    {
        get
        {
            lock (_lock)
            {
                return _isFenced;
            }
        }
    }

    /// <summary>The newest metadata offset the service has told the session about (-1 before any answer).</summary>
    public long ServiceMetadataOffset
    {
        get
        {
            lock (_lock)
            {
                return _serviceOffset;
            }
        }
    }

    /// <summary>When the service last answered a heartbeat (UTC), or null before the first answer. A broker can report
    /// itself unhealthy when this falls further behind than the service's session timeout.</summary>
    public DateTimeOffset? LastHeartbeatAt
    {
        get
        {
            lock (_lock)
            {
                return _lastHeartbeatAt;
            }
        }
    }

    /// <summary>Completes when the session has stopped, faults with the failure that ended it otherwise. Await it (or
    /// watch it) so that a broker whose session died does not carry on as if it were registered.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Registers the broker, then heartbeats in the background until stopped. Retryable failures of the
    /// registration are retried (with the same incarnation id, so that a registration that was applied without an
    /// answer is not refused as a second process) until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="cancellationToken">Cancels the registration; the session then ends as stopped. It does not stop the
    /// heartbeats once registered.</param>
    /// <exception cref="MetaApiException">The registration failed with an error that retrying cannot fix, e.g.
    /// DUPLICATE_BROKER_REGISTRATION while another process holds the broker id; the session is faulted.</exception>
    /// <exception cref="InvalidOperationException">The session was started or stopped before.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _lifecycle, 1, 0) != 0)
        {
            throw new InvalidOperationException("A BrokerSession can be started once; create a new one (a new process is a new incarnation).");
        }

        try
        {
            using var start = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
            SetState(BrokerSessionState.Registering);
            await RegisterAsync(previousEpoch: null, reason: null, start.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Finish(fault: null, shutdownOutcome: false);
            throw;
        }
        catch (Exception e)
        {
            Fault(e);
            throw;
        }

        // Not the caller's context: the loop is the session's own.
        _ = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Waits until a heartbeat answer says the broker is unfenced.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <exception cref="MetaApiException">The session faulted with it.</exception>
    /// <exception cref="InvalidOperationException">The session stopped before the broker was unfenced.</exception>
    public async Task WaitUntilUnfencedAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task changed;
            bool finished;
            lock (_lock)
            {
                if (_state == BrokerSessionState.Unfenced)
                {
                    return;
                }

                finished = _finished;
                changed = _changed.Task;
            }

            if (finished)
            {
                await Completion.WaitAsync(cancellationToken).ConfigureAwait(false); // Throws the fault, if any.
                throw new InvalidOperationException($"The session of broker {BrokerId} stopped before the broker was unfenced.");
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A controlled shutdown: heartbeats ask for it (the first at once, then on schedule) until the service
    /// says the broker may stop, which it does once leadership has moved to other brokers; then the session stops.
    /// Gives up after <see cref="BrokerSessionOptions.ControlledShutdownTimeout"/> and stops the session anyway.
    /// Calling it again joins the shutdown under way.</summary>
    /// <param name="cancellationToken">Stops waiting; the shutdown carries on (stop it with <see cref="StopAsync"/>).</param>
    /// <returns>True when the service said the broker may stop, or no longer holds its registration under this epoch
    /// (another incarnation replaced it, or it was unregistered), so nothing is led under it; false when the timeout
    /// passed, or the session had stopped before.</returns>
    /// <exception cref="MetaApiException">The session faulted with it, before or during the shutdown.</exception>
    public async Task<bool> ShutDownAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _lifecycle) == 0)
        {
            throw new InvalidOperationException("The session was not started.");
        }

        var request = new ShutdownRequest(Stopwatch.GetTimestamp() + (long)(_options.ControlledShutdownTimeout.TotalSeconds * Stopwatch.Frequency));
        var current = Interlocked.CompareExchange(ref _shutdown, request, null);
        if (current is null)
        {
            current = request;
            _wake.Release();
        }

        // Finish may have run before the request was visible to it: settle the request from the outcome.
        if (Volatile.Read(ref _finished))
        {
            // Finish marks the session finished a moment before it completes Completion with the outcome.
            await Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Settle(current, Completion.Exception?.InnerException, shutdownOutcome: false);
        }

        return await current.Outcome.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops heartbeating at once, without a controlled shutdown: the service fences the broker when its
    /// session times out. Does not throw for a session that faulted (see <see cref="Completion"/>).</summary>
    /// <param name="cancellationToken">Stops waiting for the loop to end; the session stops anyway.</param>
    /// <returns>Completes once the session's loop has ended.</returns>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _lifecycle, 2, 0) == 0)
        {
            Finish(fault: null, shutdownOutcome: false);
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await Completion.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>Stops the session (see <see cref="StopAsync"/>). Safe to call more than once.</summary>
    /// <returns>Completes once the session's loop has ended.</returns>
    public async ValueTask DisposeAsync() =>
        // The token source and semaphore are left undisposed on purpose: neither has a timer or wait handle to free
        // (their handles are never asked for), and a late ShutDownAsync or StopAsync must still be able to use them.
        await StopAsync().ConfigureAwait(false);

    /// <inheritdoc />
    public override string ToString() => $"broker {BrokerId} (incarnation {IncarnationId}, epoch {BrokerEpoch}, {State})";

    private async Task RunAsync(CancellationToken stop)
    {
        var failures = 0;
        var delay = TimeSpan.Zero; // The first heartbeat goes at once: the broker is fenced until it is answered.
        try
        {
            while (true)
            {
                var shutdown = Volatile.Read(ref _shutdown);
                if (shutdown is not null)
                {
                    var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), shutdown.Deadline);
                    if (left <= TimeSpan.Zero)
                    {
                        Finish(fault: null, shutdownOutcome: false);
                        return;
                    }

                    delay = delay < left ? delay : left;
                }

                if (delay > TimeSpan.Zero && await _wake.WaitAsync(delay, stop).ConfigureAwait(false))
                {
                    delay = TimeSpan.Zero; // Woken by a shutdown request: heartbeat at once.
                    continue;
                }

                stop.ThrowIfCancellationRequested();
                shutdown = Volatile.Read(ref _shutdown);
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var answer = await HeartbeatAsync(wantShutDown: shutdown is not null, stop).ConfigureAwait(false);
                    failures = 0;
                    if (shutdown is not null && answer.ShouldShutDown)
                    {
                        Finish(fault: null, shutdownOutcome: true);
                        return;
                    }

                    // On a fixed rate: the interval runs from the start of the last heartbeat, not from its answer.
                    delay = _options.HeartbeatInterval - Stopwatch.GetElapsedTime(started);
                }
                catch (MetaApiException e) when (e.Code is ErrorCodes.StaleBrokerEpoch or ErrorCodes.BrokerIdNotRegistered)
                {
                    if (shutdown is not null)
                    {
                        // Nothing is led under an epoch the service no longer accepts: the shutdown is done.
                        Finish(fault: null, shutdownOutcome: true);
                        return;
                    }

                    RaiseError(e, willRetry: true);
                    SetState(BrokerSessionState.Registering, fenced: true);
                    await RegisterAsync(BrokerEpoch, e, stop).ConfigureAwait(false);
                    delay = TimeSpan.Zero;
                }
                catch (MetaApiException e) when (e.IsRetryable)
                {
                    failures++;
                    RaiseError(e, willRetry: true);
                    delay = Backoff(failures);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Finish(fault: null, shutdownOutcome: false);
        }
        catch (Exception e)
        {
            Fault(e);
        }
    }

    /// <summary>Registers with this session's incarnation id, retrying retryable failures; other failures propagate.</summary>
    private async Task RegisterAsync(long? previousEpoch, MetaApiException? reason, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (true)
        {
            BrokerRegistrationResponse registration;
            try
            {
                registration = await CallAsync(
                    (client, token) => client.RegisterBrokerAsync(BrokerId, _registration, token), cancellationToken).ConfigureAwait(false);
            }
            catch (MetaApiException e) when (e.IsRetryable)
            {
                failures++;
                RaiseError(e, willRetry: true);
                await Task.Delay(Backoff(failures), cancellationToken).ConfigureAwait(false);
                continue;
            }

            lock (_lock)
            {
                _epoch = registration.BrokerEpoch;
                _serviceOffset = Math.Max(_serviceOffset, registration.MetadataOffset);
                _isFenced = true;
            }

            Registered?.Invoke(this, new BrokerRegisteredEventArgs(registration.BrokerEpoch, registration.MetadataOffset, previousEpoch, reason));
            SetState(BrokerSessionState.Fenced, fenced: true);
            return;
        }
    }

    private async Task<BrokerHeartbeatResponse> HeartbeatAsync(bool wantShutDown, CancellationToken cancellationToken)
    {
        long epoch, offset;
        lock (_lock)
        {
            epoch = _epoch;
            offset = _serviceOffset;
        }

        if (_options.AppliedMetadataOffset is { } applied)
        {
            offset = applied();
        }

        var request = new BrokerHeartbeatRequest(epoch, offset, wantShutDown);
        var answer = await CallAsync((client, token) => client.SendBrokerHeartbeatAsync(BrokerId, request, token), cancellationToken)
            .ConfigureAwait(false);
        lock (_lock)
        {
            _serviceOffset = Math.Max(_serviceOffset, answer.MetadataOffset);
            _lastHeartbeatAt = DateTimeOffset.UtcNow;
        }

        SetState(
            wantShutDown ? BrokerSessionState.ShuttingDown : answer.IsFenced ? BrokerSessionState.Fenced : BrokerSessionState.Unfenced,
            answer.IsFenced);
        return answer;
    }

    /// <summary>One call within <see cref="BrokerSessionOptions.CallTimeout"/>; running out of it is a retryable timeout.</summary>
    private async Task<T> CallAsync<T>(Func<IMetaClient, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.CallTimeout);
        try
        {
            return await call(_client, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Heartbeats and registrations of one incarnation may be repeated, so an unknown outcome is only a retry.
            throw new MetaApiException(ErrorCodes.Timeout, $"No answer within the session's call timeout of {_options.CallTimeout}.",
                statusCode: null, isRetryable: true, siloUrl: null, outcomeUnknown: true, e);
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var exponential = _options.RetryBaseDelay * Math.Pow(2, Math.Min(failures - 1, 30));
        var capped = exponential < _options.HeartbeatInterval ? exponential : _options.HeartbeatInterval;
        return capped * (0.5 + (Random.Shared.NextDouble() / 2)); // Jitter, so that brokers cut off together do not return together.
    }

    private void SetState(BrokerSessionState state, bool? fenced = null)
    {
        BrokerSessionState previous;
        long epoch;
        TaskCompletionSource changed;
        lock (_lock)
        {
            if (fenced is { } f)
            {
                _isFenced = f;
            }

            if (_finished || _state == state)
            {
                return;
            }

            previous = _state;
            _state = state;
            epoch = _epoch;
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
        StateChanged?.Invoke(this, new BrokerSessionStateChangedEventArgs(previous, state, epoch));
    }

    private void RaiseError(Exception exception, bool willRetry) => Error?.Invoke(this, new BrokerSessionErrorEventArgs(exception, willRetry));

    private void Fault(Exception exception)
    {
        try
        {
            RaiseError(exception, willRetry: false);
        }
        catch (Exception)
        {
            // The session ends with the first failure; a handler failing on it must not hide it.
        }

        Finish(exception, shutdownOutcome: false);
    }

    private void Finish(Exception? fault, bool shutdownOutcome)
    {
        BrokerSessionState previous;
        long epoch;
        TaskCompletionSource changed;
        var state = fault is null ? BrokerSessionState.Stopped : BrokerSessionState.Faulted;
        lock (_lock)
        {
            if (_finished)
            {
                return;
            }

            Volatile.Write(ref _finished, true);
            previous = _state;
            _state = state;
            _isFenced = true;
            epoch = _epoch;
            changed = _changed;
        }

        if (fault is null)
        {
            _completion.TrySetResult();
        }
        else
        {
            _completion.TrySetException(fault);
        }

        if (Volatile.Read(ref _shutdown) is { } shutdown)
        {
            Settle(shutdown, fault, shutdownOutcome);
        }

        changed.TrySetResult();
        try
        {
            StateChanged?.Invoke(this, new BrokerSessionStateChangedEventArgs(previous, state, epoch));
        }
        catch (Exception)
        {
            // The session has ended already; a handler failing on the news has nothing left to fault.
        }
    }

    private static void Settle(ShutdownRequest request, Exception? fault, bool shutdownOutcome)
    {
        if (fault is null)
        {
            request.Outcome.TrySetResult(shutdownOutcome);
        }
        else
        {
            request.Outcome.TrySetException(fault);
        }
    }

    private sealed class ShutdownRequest(long deadline)
    {
        public long Deadline { get; } = deadline;

        public TaskCompletionSource<bool> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
