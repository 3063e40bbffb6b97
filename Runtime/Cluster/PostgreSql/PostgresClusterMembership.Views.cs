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
        => LeavingOwner(grainId, _view) is null ? Task.CompletedTask : WaitForReleaseAsync(grainId, LeavingOwner, cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// The grain's previous owner is its owner over the active silos other than this one. Until that silo has said it
    /// handed over everything this incarnation owns (<see cref="ReleaseResponse.HandedOver"/>, usually in its answer to
    /// the first ask), ask it per grain, as a leaving silo is asked; it answers once its view has this silo active and
    /// its activation of the grain is gone. The views decide if it never answers: its heartbeat going stale (it crashed
    /// and owns nothing once its lease ran out) or its row leaving Active ends the wait. Once every active peer has
    /// handed over, this is a scan of the view.
    /// </remarks>
    public Task WaitForJoinHandOverAsync(GrainId grainId, CancellationToken cancellationToken)
        => JoinPredecessor(grainId, _view) is { } previous && _self is { } self
            ? WaitForJoinPredecessorAsync(grainId, self, previous, cancellationToken)
            : Task.CompletedTask;

    private async Task WaitForJoinPredecessorAsync(GrainId grainId, SiloAddress self, SiloAddress previous, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        try
        {
            // Most of the time the previous owner holds none of this silo's grains any more: one question to it, shared
            // by every activation that needs the answer (a failover activates thousands at once), settles them all.
            await HandOverCheck(self, previous).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (JoinPredecessor(grainId, _view) is not null)
            {
                await WaitForReleaseAsync(grainId, JoinPredecessor, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            var waited = _time.GetElapsedTime(started);
            _handOverStatistics.RecordWait(waited);
            if (waited >= SlowHandOver)
            {
                LogSlowHandOver(_logger, grainId, previous, waited);
            }
        }
    }

    /// <summary>Whether <paramref name="peer"/> said it holds none of <paramref name="self"/>'s grains: asked once, and a
    /// "not yet" stands for <see cref="HandOverRecheckAfter"/>, so that a burst of activations asks it once.</summary>
    private Task<bool> HandOverCheck(SiloAddress self, SiloAddress peer)
        => _handOverChecks.GetOrAdd((self, peer), static (key, membership) => new Lazy<Task<bool>>(() => membership.CheckHandOverAsync(key)), this).Value;

    private async Task<bool> CheckHandOverAsync((SiloAddress Self, SiloAddress Peer) key)
    {
        _handOverStatistics.RecordPeerQuestion();
        var handedOver = await _peers.AskHandedOverAsync(key.Peer, key.Self, HandOverCheckTimeout, CancellationToken.None).ConfigureAwait(false);
        if (handedOver)
        {
            _handedOver.TryAdd(key, true);
        }

        _ = ForgetHandOverCheckAsync(key);
        return handedOver;
    }

    private async Task ForgetHandOverCheckAsync((SiloAddress Self, SiloAddress Peer) key)
    {
        await Task.Delay(HandOverRecheckAfter, _time).ConfigureAwait(false);
        _handOverChecks.TryRemove(key, out _);
    }

    /// <summary>When this silo owns the grain: the active silo that would own it without this one, unless that silo has
    /// handed over everything this incarnation owns or its heartbeat is stale; otherwise null.</summary>
    private SiloAddress? JoinPredecessor(GrainId grainId, MembershipView view)
    {
        var self = _self;
        if (self is null)
        {
            return null;
        }

        var active = view.ActiveSilos;
        var pending = false;
        for (var i = 0; i < active.Count && !pending; i++)
        {
            pending = active[i] != self && !_handedOver.ContainsKey((self, active[i]));
        }

        // Only the grain's owner waits for its predecessor: an activation on a silo that does not own the grain in the
        // newest view does not start at all (GrainActivation.OwnedHere).
        if (!pending || RendezvousPlacement.Owner(grainId, active) != self)
        {
            return null;
        }

        var others = active.Where(s => s != self).ToArray();
        return RendezvousPlacement.Owner(grainId, others) is { } previous
            && !_handedOver.ContainsKey((self, previous))
            && view.Find(previous) is { } entry && !IsStale(entry, view)
                ? previous
                : null;
    }

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

    /// <summary>Waits until <paramref name="previousOwner"/> names no silo for the grain on the current view, or the one
    /// it names says it has released the grain.</summary>
    private async Task WaitForReleaseAsync(GrainId grainId, Func<GrainId, MembershipView, SiloAddress?> previousOwner, CancellationToken cancellationToken)
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
                if (previousOwner(grainId, _view) is not { } previous)
                {
                    return;
                }

                if (!logged)
                {
                    LogWaitingForPreviousOwner(_logger, grainId, previous);
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

    /// <summary>Asks a silo until it says it has released the grain; the views decide if it never does. Remembers a
    /// silo that said it handed over everything this incarnation owns.</summary>
    private async Task<bool> AskUntilReleasedAsync(SiloAddress previous, GrainId grainId, CancellationToken cancellationToken)
    {
        var pause = TimeSpan.FromMilliseconds(50);
        var self = _self;
        while (true)
        {
            _handOverStatistics.RecordGrainQuestion();
            var (released, handedOver) = await _peers.AskReleasedAsync(previous, grainId, self, ReleaseAskTimeout, cancellationToken).ConfigureAwait(false);
            if (handedOver && self is not null)
            {
                _handedOver.TryAdd((self, previous), true);
            }

            if (released)
            {
                return true;
            }

            await Task.Delay(pause, _time, cancellationToken).ConfigureAwait(false);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, ReleaseAskMaxPause.Ticks));
        }
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

        AskPeersToHandOver(view);
    }

    /// <summary>
    /// Finds out, in the background, from every active peer that has not said so yet whether it holds none of this
    /// incarnation's grains (<see cref="HandOverCheck"/>), as soon as a view has both active. Otherwise the first
    /// activations that need the answer ask for it, and a failover that activates thousands of grains at once waited for
    /// it under load: 250 ms per activation on average in a 100k-partition failover on three silos (BENCHMARKS.md).
    /// </summary>
    private void AskPeersToHandOver(MembershipView view)
    {
        if (_self is not { } self || !view.IsActive(self))
        {
            return;
        }

        foreach (var peer in view.ActiveSilos)
        {
            if (peer != self && !_handedOver.ContainsKey((self, peer)) && _handOverChases.TryAdd((self, peer), true))
            {
                _ = Task.Run(() => ChaseHandOverAsync(self, peer));
            }
        }
    }

    private async Task ChaseHandOverAsync(SiloAddress self, SiloAddress peer)
    {
        try
        {
            // Bounded: a peer of an earlier version never says it (activations then ask it per grain, which it answers),
            // nor does one that keeps failing to answer; the views end the chase when either silo stops being active.
            for (var attempt = 0; attempt < HandOverChaseAttempts; attempt++)
            {
                var view = _view;
                if (_loopsStopping.IsCancellationRequested || _self != self || !view.IsActive(self) || !view.IsActive(peer)
                    || _handedOver.ContainsKey((self, peer)) || await HandOverCheck(self, peer).ConfigureAwait(false))
                {
                    return;
                }

                await Task.Delay(HandOverRecheckAfter, _time, _loopsStopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_loopsStopping.IsCancellationRequested)
        {
        }
        finally
        {
            _handOverChases.TryRemove((self, peer), out _);
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
