using Npgsql;

namespace OrleansMeta.Runtime.Cluster.PostgreSql;

/// <summary>The background loops: heartbeat, probe and vote, periodic refresh.</summary>
public sealed partial class PostgresClusterMembership
{
    private readonly Dictionary<SiloAddress, int> _missedProbes = [];

    private async Task HeartbeatLoopAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.HeartbeatInterval, _time);
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false))
        {
            var sent = _time.GetTimestamp();
            try
            {
                // Each heartbeat has its own deadline (one interval): a connection that hangs rather than fails must
                // not hold the loop for the driver's 30 s command timeout while the lease runs out unnoticed.
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(_options.HeartbeatInterval);
                if (!await _table.HeartbeatAsync(self, deadline.Token).ConfigureAwait(false) && !_leaving)
                {
                    await OnHeartbeatFoundSelfDeadAsync(self).ConfigureAwait(false);
                    return;
                }

                Interlocked.Exchange(ref _leaseStart, sent);
                SetIsolated(self, false);
            }
            catch (Exception exception) when (exception is NpgsqlException or TimeoutException
                || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                LogLoopFailed(_logger, "heartbeat", exception);

                // Cut off from the table for as long as peers need to call a heartbeat stale: they may have declared
                // this silo dead and moved its grains, and it cannot find out. IsActive already says so (the lease is
                // checked on every use); this tells the rest of the silo, which deactivates its grains.
                if (!HasLease)
                {
                    SetIsolated(self, true);
                }
            }
        }
    }

    private void SetIsolated(SiloAddress self, bool isolated)
    {
        lock (_viewLock)
        {
            if (_isolated == isolated)
            {
                return;
            }

            _isolated = isolated;
            if (isolated)
            {
                LogIsolated(_logger, self, _options.HeartbeatStaleAfter);
            }
            else
            {
                LogReconnected(_logger, self);
            }

            RaiseViewChanged(_view);
        }
    }

    private async Task ProbeLoopAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.ProbeInterval, _time);
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false))
        {
            if (!IsActive)
            {
                continue;
            }

            try
            {
                await ProbeRoundAsync(self, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
            {
                LogLoopFailed(_logger, "probe", exception);
            }
        }
    }

    private async Task ProbeRoundAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        var targets = _view.ActiveSilos.Where(s => s != self).ToArray();
        foreach (var gone in _missedProbes.Keys.Except(targets).ToArray())
        {
            _missedProbes.Remove(gone);
        }

        var answers = await Task.WhenAll(targets.Select(t => _peers.ProbeAsync(t, self, _options.ProbeTimeout, cancellationToken))).ConfigureAwait(false);
        for (var i = 0; i < targets.Length; i++)
        {
            var target = targets[i];
            if (answers[i])
            {
                _missedProbes.Remove(target);
                continue;
            }

            var missed = _missedProbes[target] = _missedProbes.GetValueOrDefault(target) + 1;
            LogProbeMissed(_logger, target, missed);
            if (missed >= _options.MissedProbesLimit)
            {
                await SuspectAsync(self, target, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Votes <paramref name="target"/> dead (declaring it dead when the votes suffice), or declares it dead
    /// outright when its heartbeat is stale too.</summary>
    private async Task SuspectAsync(SiloAddress self, SiloAddress target, CancellationToken cancellationToken)
    {
        var after = await ChangeAsync(view =>
        {
            // Only an Active member judges others. A probe round that began before this silo was declared dead may
            // end after it reads so (it was cut off from its peers, not from the table): its view then counts one
            // active silo fewer, so its lone vote would be "enough" to declare a healthy peer dead. The version
            // compare-and-set makes "Active in this view" hold at commit.
            if (!view.IsActive(self) || view.Find(target) is not { Status: SiloStatus.Active } entry)
            {
                return null;
            }

            // Two independent signals (silent to probes, no heartbeat on the database's clock): no need to wait for
            // voters, who may have died with it.
            if (IsStale(entry, view))
            {
                return v => _table.TrySetStatusAsync(v, target, SiloStatus.Dead, cancellationToken);
            }

            var fresh = entry.Suspicions.Where(s => s.At > view.ReadAt - _options.VoteExpiration).ToArray();
            var others = fresh.Count(s => s.Voter != self);
            var needed = Math.Clamp(_options.VotesForDeath, 1, Math.Max(1, view.ActiveSilos.Count(s => s != target)));
            var mine = fresh.FirstOrDefault(s => s.Voter == self);

            // My vote still stands and is not enough alone: wait for another voter instead of bumping the version
            // every probe round; renew it when half its life is gone.
            if (others + 1 < needed && mine is not null && mine.At > view.ReadAt - (_options.VoteExpiration / 2))
            {
                return null;
            }

            LogVoting(_logger, target, others + 1, needed);
            return v => _table.TryVoteAsync(v, target, self, needed, _options.VoteExpiration, cancellationToken);
        }, cancellationToken).ConfigureAwait(false);

        if (after?.Find(target) is { Status: SiloStatus.Dead })
        {
            LogDeclaredDead(_logger, target, after.Version);
            _missedProbes.Remove(target);
        }
    }

    private async Task RefreshLoopAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.RefreshInterval, _time);
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                // Like heartbeats, a refresh must not hang for the driver's timeout on a connection that stalled.
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(_options.RefreshInterval + _options.HeartbeatInterval);
                var view = await RefreshAsync(deadline.Token).ConfigureAwait(false);
                if (!IsActive)
                {
                    continue;
                }

                // Rows that stopped heartbeating while Joining or ShuttingDown are never probed; clean them up here.
                foreach (var entry in view.Silos.Where(s => s.Status is SiloStatus.Joining or SiloStatus.ShuttingDown && s.Address != self && IsStale(s, view)))
                {
                    LogDeclaringDead(_logger, entry.Address, $"stale while {entry.Status}");
                    await ChangeAsync(v => DeclareDeadIfStale(v, entry.Address, deadline.Token), deadline.Token).ConfigureAwait(false);
                }
            }
            catch (Exception exception) when (exception is NpgsqlException or TimeoutException
                || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                LogLoopFailed(_logger, "refresh", exception);
            }
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
