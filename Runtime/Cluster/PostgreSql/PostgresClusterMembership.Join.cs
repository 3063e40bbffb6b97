namespace OrleansMeta.Runtime.Cluster.PostgreSql;

/// <summary>Joining: become Active only once every Active silo has answered or is known dead.</summary>
public sealed partial class PostgresClusterMembership
{
    private async Task JoinAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var lastReported = "";
        while (true)
        {
            var view = await RefreshAsync(cancellationToken).ConfigureAwait(false);
            if (_readSelfDead)
            {
                throw new InvalidOperationException($"Silo {self} was declared dead while joining cluster '{_table.ClusterId}'.");
            }

            // This process holds the endpoint now, so an older incarnation on it is certainly gone; and a row that
            // stopped heartbeating while Joining or ShuttingDown will never finish doing so.
            var gone = view.Silos.Where(s => s.Status != SiloStatus.Dead && s.Address != self
                && ((s.Address.Endpoint == self.Endpoint && s.Address.Generation < self.Generation)
                    || (s.Status is SiloStatus.Joining or SiloStatus.ShuttingDown && IsStale(s, view)))).ToArray();
            foreach (var entry in gone)
            {
                LogDeclaringDead(_logger, entry.Address, entry.Address.Endpoint == self.Endpoint ? "an older incarnation of this silo" : $"stale while {entry.Status}");
                await ChangeAsync(
                    v => v.Find(entry.Address) is { Status: not SiloStatus.Dead }
                        ? version => _table.TrySetStatusAsync(version, entry.Address, SiloStatus.Dead, cancellationToken)
                        : null,
                    cancellationToken).ConfigureAwait(false);
            }

            if (gone.Length > 0)
            {
                continue;
            }

            var active = view.Silos.Where(s => s.Status == SiloStatus.Active && s.Address != self).ToArray();
            var answers = await Task.WhenAll(active.Select(s => _peers.ProbeAsync(s.Address, self, _options.ProbeTimeout, cancellationToken))).ConfigureAwait(false);
            var silent = active.Where((_, i) => !answers[i]).ToArray();

            // A silent silo whose heartbeat is stale on the database's clock died (a whole cluster that crashed must
            // not block its own restart); one with a fresh heartbeat may be alive behind a network problem, so wait.
            var declared = false;
            foreach (var entry in silent.Where(s => IsStale(s, view)))
            {
                LogDeclaringDead(_logger, entry.Address, "silent with a stale heartbeat");
                declared |= await ChangeAsync(v => DeclareDeadIfStale(v, entry.Address, cancellationToken), cancellationToken).ConfigureAwait(false) is not null;
            }

            var waitingFor = silent.Where(s => !IsStale(s, view)).ToArray();
            if (declared)
            {
                continue;
            }

            if (waitingFor.Length == 0)
            {
                if (await _table.TrySetStatusAsync(view.Version, self, SiloStatus.Active, cancellationToken).ConfigureAwait(false) is { } version)
                {
                    await RefreshAsync(cancellationToken).ConfigureAwait(false);
                    await PushAsync(version, cancellationToken).ConfigureAwait(false);
                    LogJoined(_logger, self, version, _view.ActiveSilos.Count);
                    return;
                }

                // Someone changed the table since this view (perhaps a silo became Active): probe it too.
                LogLostCompareAndSet(_logger, view.Version);
                continue;
            }

            var silentList = string.Join(", ", waitingFor.Select(s => s.Address));
            if (_time.GetElapsedTime(started) > _options.JoinTimeout)
            {
                throw new InvalidOperationException(
                    $"Silo {self} could not join cluster '{_table.ClusterId}' within {_options.JoinTimeout} " +
                    $"({MembershipOptions.SectionName}:JoinTimeout): these Active silos do not answer probes but their heartbeats are fresh, " +
                    $"so they may be alive and unreachable from here: {silentList}. Check that this silo can reach their silo endpoints " +
                    $"(cleartext HTTP/2) and that every silo has the same {ClusterOptions.SectionName}:ClusterSecret; " +
                    "a silo that really died is declared dead once its heartbeat is older than HeartbeatStaleAfter.");
            }

            if (silentList != lastReported)
            {
                LogJoinWaiting(_logger, self, silentList);
                lastReported = silentList;
            }

            await Task.Delay(_options.ProbeInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }
}
