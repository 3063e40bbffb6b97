using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Runtime.Cluster.PostgreSql;

/// <summary>Publishing views, applying changes by compare-and-set, and reading oneself dead.</summary>
public sealed partial class PostgresClusterMembership
{
    /// <summary>A change decided on a view: applied at that view's version, it returns the new version or null when
    /// the table moved on first.</summary>
    private delegate Task<long?> Change(long expectedVersion);

    /// <summary>
    /// Takes <paramref name="view"/> unless it is older than the current one (views never go back). ViewChanged fires
    /// once per newer version, in version order: handlers run under the lock and must be quick.
    /// </summary>
    private void Publish(MembershipView view)
    {
        var self = _self;
        var readSelfDead = false;
        lock (_viewLock)
        {
            var current = _view;
            if (view.Version < current.Version)
            {
                return;
            }

            // Equal versions hold equal statuses; the later read still carries fresher heartbeats and clock.
            _view = view;
            Interlocked.Exchange(ref _viewPublished, NewViewSignal()).TrySetResult();
            if (self is not null && view.Version >= Interlocked.Read(ref _registeredAtVersion)
                && view.Find(self) is null or { Status: SiloStatus.Dead } && !_readSelfDead)
            {
                _readSelfDead = true;
                readSelfDead = !_leaving;
            }

            if (view.Version > current.Version || readSelfDead)
            {
                LogViewChanged(_logger, view.Version, view.ActiveSilos.Count, view.Silos.Count);
                RaiseViewChanged(view);
            }
        }

        if (readSelfDead)
        {
            StopServing(self!);
        }
    }

    private static TaskCompletionSource NewViewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    /// <remarks>
    /// The grain's previous owner is its owner over the active silos plus those leaving. If that is a leaving silo,
    /// wait until that silo says it has released the grain (its activation deactivated; a leaving silo activates
    /// nothing), or, on published views, until its row is Dead (written once all its grains are deactivated) or its
    /// heartbeat is stale (it crashed while leaving and owns nothing). Asking is what keeps a turn still running on the
    /// leaving silo from waiting on itself: the whole silo finishes only after that turn, the grain much sooner.
    /// </remarks>
    public Task WaitForLeavingOwnerAsync(GrainId grainId, CancellationToken cancellationToken)
        => LeavingOwner(grainId, _view) is null ? Task.CompletedTask : WaitForReleaseAsync(grainId, cancellationToken);

    /// <summary>The grain's previous owner when that is a silo leaving gracefully and still heartbeating, otherwise null.
    /// Asked by every activation: when no other silo is leaving, a scan of the view and nothing else.</summary>
    private SiloAddress? LeavingOwner(GrainId grainId, MembershipView view)
    {
        if (!AnyOtherLeaving(view))
        {
            return null;
        }

        var candidates = view.Silos
            .Where(s => s.Status == SiloStatus.Active || (s.Status == SiloStatus.ShuttingDown && s.Address != _self))
            .Select(s => s.Address)
            .ToArray();
        return RendezvousPlacement.Owner(grainId, candidates) is { } previous
            && view.Find(previous) is { Status: SiloStatus.ShuttingDown } leaving
            && !IsStale(leaving, view)
                ? previous
                : null;
    }

    private async Task WaitForReleaseAsync(GrainId grainId, CancellationToken cancellationToken)
    {
        var logged = false;
        SiloAddress? askedOf = null;
        Task<bool>? released = null;
        using var stopAsking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            while (true)
            {
                var signal = Volatile.Read(ref _viewPublished);
                if (LeavingOwner(grainId, _view) is not { } previous)
                {
                    return;
                }

                if (!logged)
                {
                    LogWaitingForLeavingOwner(_logger, grainId, previous);
                    logged = true;
                }

                if (askedOf != previous)
                {
                    askedOf = previous;
                    released = AskUntilReleasedAsync(previous, grainId, stopAsking.Token);
                }

                await Task.WhenAny(signal.Task, released!).WaitAsync(cancellationToken).ConfigureAwait(false);
                if (released!.IsCompletedSuccessfully)
                {
                    return;
                }

                if (released.IsFaulted)
                {
                    // Asking failed in a way asking again would not mend: the views alone decide from here.
                    LogReleaseAskFailed(_logger, grainId, previous, released.Exception.InnerException);
                    released = new TaskCompletionSource<bool>().Task;
                }
            }
        }
        finally
        {
            await stopAsking.CancelAsync().ConfigureAwait(false);
            if (released is not null)
            {
                await ((Task)released).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Asks a leaving silo until it says it has released the grain; the views decide if it never does.</summary>
    private async Task<bool> AskUntilReleasedAsync(SiloAddress leaving, GrainId grainId, CancellationToken cancellationToken)
    {
        var pause = TimeSpan.FromMilliseconds(50);
        while (!await _peers.AskReleasedAsync(leaving, grainId, _self, ReleaseAskTimeout, cancellationToken).ConfigureAwait(false))
        {
            await Task.Delay(pause, _time, cancellationToken).ConfigureAwait(false);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, ReleaseAskMaxPause.Ticks));
        }

        return true;
    }

    private void RaiseViewChanged(MembershipView view)
    {
        try
        {
            ViewChanged?.Invoke(view);
        }
#pragma warning disable CA1031 // A subscriber's bug must not stop membership from tracking the cluster.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            LogViewChangedHandlerFailed(_logger, view.Version, exception);
        }
    }

    /// <summary>
    /// This silo is Dead in the table: its peers have already moved its grains elsewhere, so serving one more request
    /// risks two owners. It stops at once and never revives its row; a restart joins as a new generation.
    /// </summary>
    private void StopServing(SiloAddress self)
    {
        LogReadSelfDead(_logger, self, _table.ClusterId);
        _loopsStopping.Cancel();
        _lifetime.StopApplication();
    }

    /// <summary>The heartbeat found no live row of this silo: confirm from a fresh view, and stop either way.</summary>
    private async Task OnHeartbeatFoundSelfDeadAsync(SiloAddress self)
    {
        try
        {
            await RefreshAsync(CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The row is dead whatever the read says; the read only makes the view show it.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            LogLoopFailed(_logger, "heartbeat", exception);
        }

        bool stop;
        lock (_viewLock)
        {
            stop = !_readSelfDead && !_leaving;
            if (stop)
            {
                _readSelfDead = true;
                RaiseViewChanged(_view);
            }
        }

        if (stop)
        {
            StopServing(self);
        }
    }

    /// <summary>
    /// Decides on the newest view and applies the change by compare-and-set; a lost compare-and-set re-reads and
    /// decides again. On success, re-reads and pushes the new version to every peer. Returns the view after the
    /// change, or null when the decision was that nothing needs to change.
    /// </summary>
    private async Task<MembershipView?> ChangeAsync(Func<MembershipView, Change?> decide, CancellationToken cancellationToken)
    {
        while (true)
        {
            var view = await RefreshAsync(cancellationToken).ConfigureAwait(false);
            if (decide(view) is not { } change)
            {
                return null;
            }

            if (await change(view.Version).ConfigureAwait(false) is { } version)
            {
                var changed = await RefreshAsync(cancellationToken).ConfigureAwait(false);
                await PushAsync(version, cancellationToken).ConfigureAwait(false);
                return changed;
            }

            LogLostCompareAndSet(_logger, view.Version);
        }
    }

    private Task PushAsync(long version, CancellationToken cancellationToken)
    {
        var self = _self;
        var targets = _view.Silos.Where(s => s.Status != SiloStatus.Dead && s.Address != self).Select(s => s.Address).ToArray();
        return _peers.NotifyAsync(targets, self, version, _options.ProbeTimeout, cancellationToken);
    }

    /// <summary>Whether a silo other than this one is leaving: asked by every activation, so a loop, not a lambda.</summary>
    private bool AnyOtherLeaving(MembershipView view)
    {
        for (var i = 0; i < view.Silos.Count; i++)
        {
            if (view.Silos[i].Status == SiloStatus.ShuttingDown && view.Silos[i].Address != _self)
            {
                return true;
            }
        }

        return false;
    }

    private bool IsStale(SiloEntry entry, MembershipView view) => view.ReadAt - entry.HeartbeatAt > _options.HeartbeatStaleAfter;

    private Change? DeclareDeadIfStale(MembershipView view, SiloAddress target, CancellationToken cancellationToken) =>
        view.Find(target) is { Status: not SiloStatus.Dead } entry && IsStale(entry, view)
            ? v => _table.TrySetStatusAsync(v, target, SiloStatus.Dead, cancellationToken)
            : null;
}
