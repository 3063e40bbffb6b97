using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Timers;

namespace OrleansMeta.Runtime.Activation;

/// <summary>
/// One in-memory incarnation of a grain. All of its code runs on its own exclusive task scheduler, and its mailbox
/// starts one request at a time: a turn runs to completion, awaits included, before the next call begins. Read-only
/// calls may overlap with each other, never with anything else.
/// </summary>
internal sealed partial class GrainActivation
{
    /// <summary>Set while the grain instance is being constructed so that <see cref="Grain"/>'s constructor can find it.</summary>
    [ThreadStatic]
    internal static GrainActivation? Constructing;

    private readonly Lock _lock = new();
    private readonly Queue<WorkItem> _queue = new();
    private readonly HashSet<long> _runningRequests = [];
    private readonly List<GrainTimer> _timers = [];
    private readonly List<IActivationStateLoader> _states = [];
    private readonly Type _grainClass;
    private TaskCompletionSource? _workSignal;
    private int _queuedRequests;
    private ActivationStatus _status = ActivationStatus.Created;
    private DeactivationReason? _deactivationReason;

    internal GrainActivation(GrainId grainId, Type grainClass, GrainRuntime runtime)
    {
        GrainId = grainId;
        _grainClass = grainClass;
        Runtime = runtime;
        Scheduler = new ActivationScheduler();
        LastActive = runtime.TimeProvider.GetUtcNow();
    }

    public GrainId GrainId { get; }

    public GrainRuntime Runtime { get; }

    /// <summary>Runs every continuation of this activation, one at a time.</summary>
    public TaskScheduler Scheduler { get; }

    public Grain? Instance { get; private set; }

    public DateTimeOffset LastActive { get; private set; }

    /// <summary>Set by the grain: idle collection skips this activation (see <c>Grain.KeepAliveWhenIdle</c>).</summary>
    public bool KeepAliveWhenIdle { get; set; }

    public ActivationStatus Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    /// <summary>True when nothing runs or waits and the activation could be collected.</summary>
    public bool IsIdle
    {
        get
        {
            lock (_lock)
            {
                // Queued timer ticks do not count: timers must not keep a grain alive.
                return _status == ActivationStatus.Valid && _deactivationReason is null && _runningRequests.Count == 0 && _queuedRequests == 0;
            }
        }
    }

    /// <summary>Whether the activation starts only where this silo owns the grain (see <see cref="ActivationCatalog.Dispatch(GrainRequest, bool)"/>).</summary>
    internal bool ChecksOwner { get; init; } = true;

    /// <summary>Starts the activation's turn loop on its scheduler.</summary>
    public void Start()
        => Completion = Task.Factory.StartNew(RunAsync, CancellationToken.None, TaskCreationOptions.DenyChildAttach, Scheduler).Unwrap();

    /// <summary>Completes when the activation has deactivated (or failed to activate).</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Queues a call. Returns false when this activation is gone and the caller must find the current one.
    /// Throws <see cref="GrainCallCycleException"/> when the call would wait on a turn that waits on it.</summary>
    public bool TryEnqueue(GrainRequest request)
    {
        lock (_lock)
        {
            if (_status == ActivationStatus.Invalid)
            {
                return false;
            }

            ThrowIfCycle(request);
            _queue.Enqueue(new WorkItem(request, null));
            _queuedRequests++;
            SignalLocked();
            return true;
        }
    }

    internal void EnqueueTimerTick(GrainTimer timer)
    {
        lock (_lock)
        {
            if (_status is ActivationStatus.Valid or ActivationStatus.Activating or ActivationStatus.Created)
            {
                _queue.Enqueue(new WorkItem(null, timer));
                SignalLocked();
            }
        }
    }

    /// <summary>Asks the activation to deactivate once the turns now running end. The first reason wins.</summary>
    public void RequestDeactivation(DeactivationReason reason)
    {
        lock (_lock)
        {
            if (_status == ActivationStatus.Invalid || _deactivationReason is not null)
            {
                return;
            }

            _deactivationReason = reason;
            SignalLocked();
        }
    }

    internal void AddTimer(GrainTimer timer)
    {
        lock (_lock)
        {
            if (_status is ActivationStatus.Deactivating or ActivationStatus.Invalid)
            {
                throw new InvalidOperationException($"Grain {GrainId} is deactivating; it cannot register timers.");
            }

            _timers.Add(timer);
        }
    }

    /// <summary>How many timers the activation has registered and not disposed.</summary>
    internal int TimerCount
    {
        get
        {
            lock (_lock)
            {
                return _timers.Count;
            }
        }
    }

    internal void RemoveTimer(GrainTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    internal void AddState(IActivationStateLoader state) => _states.Add(state);

    private void SignalLocked()
    {
        var signal = _workSignal;
        _workSignal = null;
        signal?.TrySetResult();
    }

    private void ThrowIfCycle(GrainRequest request)
    {
        // The caller chain lists every turn waiting (transitively) on this call. If one of them is a turn of this
        // activation, this call can only start after that turn ends, which waits for this call: a deadlock.
        if (_runningRequests.Count == 0)
        {
            return;
        }

        var path = new List<GrainId> { GrainId };
        for (var link = request.Caller; link is not null; link = link.Caller)
        {
            path.Add(link.Grain);
            if (link.Grain == GrainId && _runningRequests.Contains(link.RequestId))
            {
                path.Reverse();
                throw new GrainCallCycleException(
                    $"Call cycle: {string.Join(" → ", path)}. Grain {GrainId} is waiting for this very call chain and cannot " +
                    $"start {request.Method.Name} until it returns; restructure the calls or move the work into one grain.",
                    path);
            }
        }
    }

    private async Task RunAsync()
    {
        if (!await ActivateAsync())
        {
            return;
        }

        var readOnlyTurns = new List<Task>();
        while (true)
        {
            WorkItem item;
            Task? waitForWork = null;
            lock (_lock)
            {
                if (_deactivationReason is not null && readOnlyTurns.Count == 0)
                {
                    _status = ActivationStatus.Deactivating;
                    break;
                }

                if (!_queue.TryPeek(out item) || _deactivationReason is not null)
                {
                    _workSignal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    waitForWork = _workSignal.Task;
                    item = default;
                }
                else if (item.Request is { Method.IsReadOnly: true } || readOnlyTurns.Count == 0)
                {
                    _queue.Dequeue();
                    if (item.Request is not null)
                    {
                        _queuedRequests--;
                        _runningRequests.Add(item.Request.Id);
                    }
                }
                else
                {
                    // An exclusive turn waits until the read-only turns running now have ended.
                    item = default;
                }
            }

            if (waitForWork is not null)
            {
                await (readOnlyTurns.Count == 0 ? waitForWork : Task.WhenAny(waitForWork, Task.WhenAny(readOnlyTurns)));
                readOnlyTurns.RemoveAll(t => t.IsCompleted);
                continue;
            }

            if (item.Request is null && item.Timer is null)
            {
                await Task.WhenAll(readOnlyTurns);
                readOnlyTurns.Clear();
                continue;
            }

            if (item.Timer is not null)
            {
                await item.Timer.TickAsync();
            }
            else if (item.Request!.Method.IsReadOnly)
            {
                readOnlyTurns.Add(RunTurnAsync(item.Request));
                readOnlyTurns.RemoveAll(t => t.IsCompleted);
            }
            else
            {
                await RunTurnAsync(item.Request);
            }
        }

        await DeactivateAsync();
    }

    private async Task RunTurnAsync(GrainRequest request)
    {
        try
        {
            if (request.CancellationToken.IsCancellationRequested)
            {
                request.SetCanceled();
                return;
            }

            // Calls made from this turn carry it in their chain; the change stays inside this async method.
            RequestContext.Current = new CallChainLink(GrainId, request.Id, request.Caller);
            var result = await request.Method.InvokeAsync(Instance!, request.Arguments);
            request.SetResult(result);
        }
        catch (Exception exception)
        {
            request.SetException(exception);
        }
        finally
        {
            lock (_lock)
            {
                _runningRequests.Remove(request.Id);
                LastActive = Runtime.TimeProvider.GetUtcNow();
            }
        }
    }

    private async Task<bool> ActivateAsync()
    {
        if (!OwnedHere())
        {
            // The call that created this activation was dispatched on a view read just before a newer one arrived, and
            // it was added to the catalog after the rebalancer had scanned it for that view: nothing would ever
            // deactivate it, and the grain's owner, or the newcomer this silo told it had released the grain, could be
            // running another. It loads nothing and runs nothing; its calls go to the owner of the newest view.
            var pending = Retire();
            Log.NotOwner(Runtime.Logger, GrainId);
            foreach (var work in pending)
            {
                if (work.Request is { } request)
                {
                    Runtime.Dispatcher.Dispatch(request);
                }
            }

            return false;
        }

        lock (_lock)
        {
            _status = ActivationStatus.Activating;
        }

        var timeout = Runtime.Options.ActivationTimeout;
        using var cancellation = new CancellationTokenSource(timeout, Runtime.TimeProvider);
        try
        {
            // The deadline is the token's timer, armed before any grain code runs, so it counts from the start.
            await ActivateCoreAsync(cancellation.Token).WaitAsync(cancellation.Token);
            lock (_lock)
            {
                _status = ActivationStatus.Valid;
            }

            Log.Activated(Runtime.Logger, GrainId);
            return true;
        }
        catch (Exception exception)
        {
            var error = exception is OperationCanceledException && cancellation.IsCancellationRequested
                ? new GrainActivationException($"Activating grain {GrainId} took longer than {timeout.TotalSeconds:0.###} s (ActivationTimeout).", exception)
                : new GrainActivationException($"Activating grain {GrainId} failed: {exception.Message}", exception);
            Log.ActivationFailed(Runtime.Logger, exception, GrainId);
            foreach (var work in Retire())
            {
                work.Request?.SetException(error);
            }

            StopTimers();
            return false;
        }
    }

    /// <summary>Whether this silo owns the grain in the newest view it has (always, outside a cluster). Checked once the
    /// activation is in the catalog, where a later view's rebalancing finds it.</summary>
    private bool OwnedHere() => !ChecksOwner || Runtime.Dispatcher is not Messaging.ClusterCallDispatcher cluster || cluster.IsLocalOwner(GrainId);

    private async Task ActivateCoreAsync(CancellationToken cancellationToken)
    {
        Constructing = this;
        try
        {
            Instance = GrainActivator.Create(this, _grainClass);
        }
        finally
        {
            Constructing = null;
        }

        // One owner for truth held in memory: wait until no silo declared dead can still act as this grain's owner.
        if (_grainClass.IsDefined(typeof(KeepsTruthInMemoryAttribute), inherit: false) && Runtime.Membership is { } membership)
        {
            await membership.WaitForDeadSilosLeasesAsync(cancellationToken);
        }

        // One activation at a time across a hand-over: the previous owner, leaving or active when this silo joined,
        // finishes its last turns first.
        if (Runtime.Membership is { } current)
        {
            await current.WaitForLeavingOwnerAsync(GrainId, cancellationToken);
            await current.WaitForJoinHandOverAsync(GrainId, cancellationToken);
        }

        foreach (var state in _states)
        {
            await state.LoadAsync(cancellationToken);
        }

        await Instance.OnActivateAsync(cancellationToken);
    }

    private async Task DeactivateAsync()
    {
        var reason = _deactivationReason ?? DeactivationReason.Requested;
        StopTimers();
        var timeout = Runtime.Options.DeactivationTimeout;
        using (var cancellation = new CancellationTokenSource(timeout, Runtime.TimeProvider))
        {
            try
            {
                await Instance!.OnDeactivateAsync(reason, cancellation.Token).WaitAsync(cancellation.Token);
            }
            catch (Exception exception)
            {
                Log.DeactivationFailed(Runtime.Logger, exception, GrainId, reason);
            }
        }

        var pending = Retire();
        Log.Deactivated(Runtime.Logger, GrainId, reason);

        // Calls that arrived while this activation was going away run on its successor.
        foreach (var work in pending)
        {
            if (work.Request is { } request)
            {
                Runtime.Dispatcher.Dispatch(request);
            }
        }
    }

    /// <summary>Leaves the catalog and takes whatever is still queued; later callers find the next activation.</summary>
    private List<WorkItem> Retire()
    {
        Runtime.Catalog.Remove(this);
        lock (_lock)
        {
            _status = ActivationStatus.Invalid;
            List<WorkItem> pending = [.. _queue];
            _queue.Clear();
            _queuedRequests = 0;
            return pending;
        }
    }

    private void StopTimers()
    {
        GrainTimer[] timers;
        lock (_lock)
        {
            timers = [.. _timers];
            _timers.Clear();
        }

        foreach (var timer in timers)
        {
            timer.Stop();
        }
    }

    public override string ToString() => $"Activation({GrainId}, {Status})";

    private readonly record struct WorkItem(GrainRequest? Request, GrainTimer? Timer);
}

internal enum ActivationStatus
{
    Created,
    Activating,
    Valid,
    Deactivating,
    Invalid,
}
