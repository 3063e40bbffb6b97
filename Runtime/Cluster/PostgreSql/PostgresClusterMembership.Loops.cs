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
        var reached = answers.Count(a => a);
        for (var i = 0; i < targets.Length; i++)
        {
            var target = targets[i];
            if (answers[i])
            {
                _missedProbes.Remove(target);
                await WithdrawVoteAsync(self, target, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var missed = _missedProbes[target] = _missedProbes.GetValueOrDefault(target) + 1;
            LogProbeMissed(_logger, target, missed);
            if (missed >= _options.MissedProbesLimit)
            {
                // Local health: the other active silos, probed in this same round, vouch for this silo's own
                // connectivity. One that reached no more than half of them may itself be the silo that is cut off,
                // so the target's silence proves nothing (docs/membership.md).
                var witnesses = targets.Length - 1;
                var healthy = witnesses > 0 && reached * 2 > witnesses;
                await SuspectAsync(self, target, healthy ? null : (reached, witnesses, missed == _options.MissedProbesLimit), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Votes <paramref name="target"/> dead (declaring it dead when the votes suffice), or declares it dead outright
    /// when its heartbeat is stale too. Only a healthy silo votes: one that reached more than half of the other active
    /// silos in the round that missed the target (otherwise <paramref name="unhealthy"/> says how many it reached).
    /// Any silo may apply the stale-heartbeat rule, which rests on PostgreSQL's clock, not on this silo's network.
    /// </summary>
    private async Task SuspectAsync(
        SiloAddress self, SiloAddress target, (int Reached, int Witnesses, bool Log)? unhealthy, CancellationToken cancellationToken)
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
            // voters, who may have died with it. A stale heartbeat also means its lease has run out: it owns nothing.
            if (IsStale(entry, view))
            {
                return v => _table.TrySetStatusAsync(v, target, SiloStatus.Dead, cancellationToken);
            }

            // Not sure of its own connectivity (or, with no third silo, unable to be sure): it does not vote. In two
            // silos that cannot reach each other neither knows which one is cut off, so neither removes the other;
            // a silo that really died is removed by the stale-heartbeat rule above once its lease has run out.
            if (unhealthy is { } doubt)
            {
                if (doubt.Log)
                {
                    LogNotVoting(_logger, target, doubt.Reached, doubt.Witnesses);
                }

                return null;
            }

            var fresh = CountingVotes(entry, view);
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

    /// <summary>The votes against <paramref name="entry"/> that count: not expired, and cast by a silo that is still
    /// Active (a voter declared dead, or gone, may have been the one cut off). The same rule as in the vote's SQL.</summary>
    private SuspicionVote[] CountingVotes(SiloEntry entry, MembershipView view) =>
        [.. entry.Suspicions.Where(s => s.At > view.ReadAt - _options.VoteExpiration && view.IsActive(s.Voter))];

    /// <summary>
    /// This silo reached <paramref name="target"/> again: a vote it cast against it belongs to an episode that is
    /// over, and must not add up with a later, unrelated suspicion by another silo (a healed pause plus a stall of a
    /// third silo's traffic seconds later would otherwise make two votes). Reads only the local view, so it costs a
    /// database round trip only when there is a vote to take back.
    /// </summary>
    private async Task WithdrawVoteAsync(SiloAddress self, SiloAddress target, CancellationToken cancellationToken)
    {
        if (_view.Find(target) is not { Status: SiloStatus.Active } entry || entry.Suspicions.All(s => s.Voter != self))
        {
            return;
        }

        try
        {
            var after = await ChangeAsync(
                view => view.IsActive(self) && view.Find(target) is { Status: SiloStatus.Active } current && current.Suspicions.Any(s => s.Voter == self)
                    ? v => _table.TryWithdrawVoteAsync(v, target, self, cancellationToken)
                    : null,
                cancellationToken).ConfigureAwait(false);
            if (after is not null)
            {
                LogVoteWithdrawn(_logger, target);
            }
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            // Best effort: the rest of the round must still judge the other peers. The next successful probe tries
            // again, and the vote expires on its own (VoteExpiration).
            LogLoopFailed(_logger, "probe", exception);
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
