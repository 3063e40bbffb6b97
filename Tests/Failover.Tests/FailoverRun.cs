using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Npgsql;
using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Failover.Tests;

/// <summary>What one failover run measured.</summary>
/// <param name="Synchronous">Whether the replica was a synchronous standby.</param>
/// <param name="Lag">The latency of the link the replica streams through (zero: straight from the primary).</param>
/// <param name="Acknowledged">Writes the service acknowledged (200 with a metadata offset), before and after the crash.</param>
/// <param name="AcknowledgedBeforeKill">Of those, acknowledged before the primary was killed.</param>
/// <param name="Lost">Acknowledged writes whose log record is missing from the promoted server, or holds another value.</param>
/// <param name="Failed">Requests that got no acknowledgement (503, timeout, refused connection).</param>
/// <param name="WithoutService">Last acknowledgement before the kill to the first acknowledgement of a request sent after it.</param>
/// <param name="Promotion">How long pg_ctl promote took (started at once after the kill: failure detection is not part of it).</param>
/// <param name="LagAtKill">Just before the kill command: the primary's flushed WAL position minus the position the
/// replica last reported written, in bytes.</param>
/// <param name="WriteLagAtKill">Just before the kill: the primary's <c>pg_stat_replication.write_lag</c> for the replica.</param>
/// <param name="DiscardedBytes">Bytes the primary had sent that the lagging link still held when the primary died: the
/// WAL (with its few bytes of framing per message) the replica never got.</param>
/// <param name="LostWindow">The last acknowledgement before the kill minus that of the oldest lost write: how far back
/// the loss reaches (the last acknowledgement is the primary's last sign of life the writers saw).</param>
/// <param name="Kill">How long the kill took (the script, then kill -9 of the postmaster and its processes).</param>
/// <param name="SiloRestarts">Per silo that stopped: when its stop was noticed and when its replacement was ready, from
/// the kill.</param>
/// <param name="SiloStops">Silo processes that stopped during the run (each was restarted on its ports, as a supervisor would).</param>
/// <param name="RewrittenLogStops">Of those, silos that stopped on finding the metadata log rewritten under their image.</param>
/// <param name="Violations">Broken invariants: a lost write that is not part of the tail, a write acknowledged after the kill
/// that is missing, a gap in the promoted log, a silo image that differs from the promoted log. Must be empty in every mode.</param>
/// <param name="LostDetails">Each lost write: topic, value, offset.</param>
public sealed record FailoverReport(
    bool Synchronous,
    TimeSpan Lag,
    int Silos,
    int Writers,
    int Acknowledged,
    int AcknowledgedBeforeKill,
    int Lost,
    int Failed,
    TimeSpan WithoutService,
    TimeSpan Promotion,
    long LagAtKill,
    TimeSpan? WriteLagAtKill,
    long DiscardedBytes,
    TimeSpan? LostWindow,
    TimeSpan Kill,
    IReadOnlyList<(TimeSpan Stopped, TimeSpan? Ready)> SiloRestarts,
    int SiloStops,
    int RewrittenLogStops,
    IReadOnlyList<string> Violations,
    IReadOnlyList<string> LostDetails)
{
    public override string ToString() =>
        FormattableString.Invariant(
            $"replication={(Synchronous ? "sync" : "async")} lag_ms={Lag.TotalMilliseconds:F0} silos={Silos} writers={Writers} acknowledged={Acknowledged} acknowledged_before_kill={AcknowledgedBeforeKill} lost={Lost} failed_requests={Failed} without_service_ms={WithoutService.TotalMilliseconds:F0} promote_ms={Promotion.TotalMilliseconds:F0}")
        + FormattableString.Invariant(
            $" lag_at_kill_bytes={LagAtKill} write_lag_at_kill_ms={(WriteLagAtKill is { } w ? w.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) : "-")} discarded_bytes={DiscardedBytes} lost_window_ms={(LostWindow is { } l ? l.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) : "-")} kill_ms={Kill.TotalMilliseconds:F0} silo_stops={SiloStops} rewritten_log_stops={RewrittenLogStops}")
        + (SiloRestarts.Count > 0
            ? " silo_restarts=[" + string.Join(", ", SiloRestarts.Select(r => FormattableString.Invariant(
                $"stopped@{r.Stopped.TotalMilliseconds:F0}ms ready@{(r.Ready is { } ready ? ready.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + "ms" : "-")}"))) + "]"
            : "")
        + (Violations.Count > 0 ? $" VIOLATIONS=[{string.Join("; ", Violations.Take(20))}]" : "")
        + (LostDetails.Count > 0 ? $" lost_writes=[{string.Join("; ", LostDetails.Take(20))}]" : "");
}

/// <summary>
/// Drives durable writes (topic config changes, each one metadata log record) through the public API of real silos
/// whose PostgreSQL is a primary with a streaming replica, kills the primary with kill -9 mid-load, promotes the
/// replica, and checks every acknowledged write against the promoted server.
/// </summary>
public static class FailoverRun
{
    private const string Config = "retention.ms";

    private sealed record Ack(string Topic, long Value, long Offset, long SentAt, long AckedAt);

    public static async Task<FailoverReport> RunAsync(
        bool synchronous, int siloCount, int writers, int acksBeforeKill, int acksAfterKillPerWriter, TimeSpan lag = default)
    {
        await using var pair = await PostgresPair.StartAsync(synchronous);
        // A replica that lags: it streams through a link that holds every byte for `lag`, and what the link still
        // holds when the primary dies dies with it (WAL the primary had not got to its replica yet).
        await using var link = lag > TimeSpan.Zero ? new TcpProxy("127.0.0.1", pair.PrimaryPort, lag) : null;
        if (link is not null)
        {
            await pair.RelayReplicaThroughAsync(link.Port);
        }

        var clusterId = $"failover-{Guid.NewGuid():N}"[..24];
        var secret = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        await using var silos = new SiloSupervisor(pair.ConnectionString, clusterId, secret, siloCount);
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            foreach (var silo in silos.Current)
            {
                await Eventually.Until(() => IsReadyAsync(http, silo.BaseAddress), $"silo {silo.BaseAddress} is ready", TimeSpan.FromSeconds(60));
            }

            using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = silos.Current.Select(s => s.BaseAddress).ToList() });
            using var stopping = new CancellationTokenSource();
            var broker = Task.Run(() => BrokerAsync(client, stopping.Token));
            await Eventually.Until(async () => (await client.GetMetadataAsync()).Brokers.Count > 0, "the broker is unfenced", TimeSpan.FromSeconds(60));
            var topics = Enumerable.Range(0, writers).Select(i => $"failover-{i}").ToArray();
            foreach (var topic in topics)
            {
                await client.CreateTopicAsync(new CreateTopicRequest(topic, Partitions: 1, ReplicationFactor: 1));
            }

            await using var primarySql = new NpgsqlConnection(pair.PrimaryOnly);
            await primarySql.OpenAsync();

            var acks = new ConcurrentQueue<Ack>();
            var failed = 0;
            long killedAt = long.MaxValue;
            var loops = topics.Select((topic, i) => Task.Run(async () =>
            {
                // A restarted silo comes back on the same ports, so the address stays right.
                var silo = silos.Current[i % siloCount].BaseAddress;
                for (var value = 1000L; !stopping.IsCancellationRequested; value++)
                {
                    var sentAt = Stopwatch.GetTimestamp();
                    var offset = await TryWriteAsync(http, silo, topic, value, stopping.Token);
                    if (offset is { } o)
                    {
                        acks.Enqueue(new Ack(topic, value, o, sentAt, Stopwatch.GetTimestamp()));
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                        // Back off a little while the database is away, so the retries do not starve the silos of CPU.
                        await Task.Delay(20, CancellationToken.None);
                    }
                }
            })).ToArray();

            await Eventually.Until(() => acks.Count >= acksBeforeKill, $"{acksBeforeKill} writes acknowledged", TimeSpan.FromSeconds(120));
            var (lagAtKill, writeLagAtKill) = await ReplicationLagAsync(primarySql);
            var killing = Stopwatch.GetTimestamp();
            await pair.KillPrimaryAsync();
            // Stamped once the postmaster is gone (the script waits for it), so no request stamped later reached it.
            Volatile.Write(ref killedAt, Stopwatch.GetTimestamp());
            var promoting = Stopwatch.GetTimestamp();
            await pair.PromoteReplicaAsync();
            var promotion = Stopwatch.GetElapsedTime(promoting);
            await Eventually.Until(
                () => topics.All(t => acks.Count(a => a.Topic == t && a.SentAt > killedAt) >= acksAfterKillPerWriter),
                $"every writer has {acksAfterKillPerWriter} acknowledgements after the failover", TimeSpan.FromSeconds(90));
            await stopping.CancelAsync();
            await Task.WhenAll(loops);
            await broker;

            // Every silo must be whole again, not just answering writes: ready, and its metadata log listener back on
            // the promoted server (otherwise its image advances only by polling). A silo restarted since the kill
            // listened on the promoted server from its start.
            foreach (var silo in silos.Current)
            {
                await Eventually.Until(() => IsReadyAsync(http, silo.BaseAddress), $"silo {silo.BaseAddress} is ready after the failover", TimeSpan.FromSeconds(30));
                if (!silos.RestartedSince(killedAt, silo))
                {
                    await Eventually.Until(() => silo.Output.Contains("Listening for metadata log appends of cluster " + clusterId + " again", StringComparison.Ordinal),
                        $"silo {silo.BaseAddress} listens for log appends again", TimeSpan.FromSeconds(30));
                }
            }

            var all = acks.ToArray();
            var lastBefore = all.Where(a => a.AckedAt <= killedAt).Max(a => a.AckedAt);
            var firstAfter = all.Where(a => a.SentAt > killedAt).Min(a => a.AckedAt);
            var log = await ReadLogAsync(pair.ReplicaOnly, clusterId);
            var lostAcks = FindLost(log, all);
            var violations = new List<string>();
            CheckLostAreTheTail(all, lostAcks, killedAt, violations);
            CheckLogIsGapFree(log, violations);
            await CheckImagesEqualLogAsync(http, silos, log, topics, violations);
            var lost = lostAcks.Select(a => $"{a.Topic}={a.Value}@{a.Offset} (log)").ToList();
            var finalLost = await FindFinalStateLostAsync(client, all);
            return new FailoverReport(
                synchronous, lag, siloCount, writers, all.Length, all.Count(a => a.AckedAt <= killedAt), lost.Count + finalLost.Count, failed,
                Stopwatch.GetElapsedTime(lastBefore, firstAfter), promotion,
                lagAtKill, writeLagAtKill, link?.DiscardedServerBytes ?? 0,
                lostAcks.Count > 0 ? Stopwatch.GetElapsedTime(lostAcks.Min(a => a.AckedAt), lastBefore) : null,
                Stopwatch.GetElapsedTime(killing, killedAt),
                silos.Restarts.Select(r => (Stopwatch.GetElapsedTime(killedAt, r.StoppedAt), r.ReadyAt == 0 ? (TimeSpan?)null : Stopwatch.GetElapsedTime(killedAt, r.ReadyAt))).ToList(),
                silos.Stops, silos.RewrittenLogStops, violations, [.. lost, .. finalLost]);
        }
        catch (Exception exception)
        {
            throw new InvalidOperationException(
                $"The failover run failed: {exception.Message}\n" + silos.Describe(), exception);
        }
    }

    private static async Task<bool> IsReadyAsync(HttpClient http, Uri silo)
    {
        try
        {
            using var answer = await http.GetAsync(new Uri(silo, "health/ready"));
            return answer.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>
    /// The replica's lag as the primary sees it, in one read: its flushed WAL position (in asynchronous mode a commit is
    /// acknowledged once flushed there) minus the position the replica last reported written (it reports each write at
    /// once, and its reports are not delayed), in bytes; and the primary's <c>write_lag</c> figure for the replica.
    /// </summary>
    private static async Task<(long Bytes, TimeSpan? WriteLag)> ReplicationLagAsync(NpgsqlConnection primary)
    {
        await using var command = new NpgsqlCommand(
            "SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), write_lsn)::bigint, write_lag FROM pg_stat_replication WHERE application_name = 'replica1'",
            primary);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync()
            ? (reader.IsDBNull(0) ? 0 : Math.Max(0, reader.GetInt64(0)), reader.IsDBNull(1) ? null : reader.GetFieldValue<TimeSpan>(1))
            : (0, null);
    }

    /// <summary>One attempt, never retried: the offset if the service acknowledged the write, otherwise null.</summary>
    private static async Task<long?> TryWriteAsync(HttpClient http, Uri silo, string topic, long value, CancellationToken stopping)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Patch, new Uri(silo, $"v1/topics/{topic}/configs"))
            {
                Content = JsonContent.Create(new Dictionary<string, object>
                {
                    ["configs"] = new Dictionary<string, string> { [Config] = value.ToString(CultureInfo.InvariantCulture) },
                }),
            };
            using var answer = await http.SendAsync(request, timeout.Token);
            if (!answer.IsSuccessStatusCode)
            {
                return null;
            }

            var body = await answer.Content.ReadFromJsonAsync<TopicResponse>(timeout.Token);
            return body!.MetadataOffset;
        }
        catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>A broker that stays registered and unfenced throughout (topic creation needs one).</summary>
    private static async Task BrokerAsync(MetaClient client, CancellationToken stopping)
    {
        long epoch = -1;
        long offset = 0;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (epoch < 0)
                {
                    var registration = await client.RegisterBrokerAsync(1, new BrokerRegistrationRequest(
                        Guid.NewGuid(), [new BrokerListener("PLAINTEXT", "broker-1.test", 9092)], null), stopping);
                    (epoch, offset) = (registration.BrokerEpoch, registration.MetadataOffset);
                }

                var answer = await client.SendBrokerHeartbeatAsync(1, new BrokerHeartbeatRequest(epoch, offset), stopping);
                offset = Math.Max(offset, answer.MetadataOffset);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (MetaApiException exception) when (exception.Code == "STALE_BROKER_EPOCH")
            {
                epoch = -1; // Fenced while the database was away: register a new incarnation.
            }
            catch (Exception)
            {
                // The service is failing over; the next heartbeat tries again.
            }

            await Task.Delay(500, CancellationToken.None);
        }
    }

    /// <summary>The promoted server's metadata log of this cluster: offset to (key, payload), and its head.</summary>
    private sealed record PromotedLog(SortedDictionary<long, (string Key, string Payload)> Records, long Head);

    private static async Task<PromotedLog> ReadLogAsync(string connectionString, string clusterId)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var records = new SortedDictionary<long, (string Key, string Payload)>();
        await using (var command = new NpgsqlCommand("SELECT log_offset, key, payload FROM metadata_log WHERE cluster_id = $1", connection))
        {
            command.Parameters.AddWithValue(clusterId);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                records[reader.GetInt64(0)] = (reader.GetString(1), Encoding.UTF8.GetString(reader.GetFieldValue<byte[]>(2)));
            }
        }

        await using (var command = new NpgsqlCommand("SELECT last_offset FROM metadata_log_head WHERE cluster_id = $1", connection))
        {
            command.Parameters.AddWithValue(clusterId);
            return new PromotedLog(records, await command.ExecuteScalarAsync() is long head ? head : 0);
        }
    }

    /// <summary>Acknowledged writes that are not in the promoted server's metadata log at their offset, with their value.</summary>
    private static List<Ack> FindLost(PromotedLog log, IReadOnlyList<Ack> acks)
        => acks.Where(ack => !log.Records.TryGetValue(ack.Offset, out var record) || record.Key != ack.Topic
                || !record.Payload.Contains($"\"{ack.Value.ToString(CultureInfo.InvariantCulture)}\"", StringComparison.Ordinal))
            .ToList();

    /// <summary>
    /// What asynchronous replication may lose is the end of the log and only that: every lost write was acknowledged
    /// before the kill, and its offset is above that of every write acknowledged before the kill that survived (so in
    /// each topic, whose writes are sequential, no write survives whose predecessor was lost).
    /// </summary>
    private static void CheckLostAreTheTail(IReadOnlyList<Ack> acks, IReadOnlyList<Ack> lost, long killedAt, List<string> violations)
    {
        foreach (var ack in lost.Where(a => a.AckedAt > killedAt))
        {
            violations.Add($"{ack.Topic}={ack.Value}@{ack.Offset} was acknowledged after the kill and is missing");
        }

        var lostOffsets = lost.Select(a => a.Offset).ToHashSet();
        var survivedBefore = acks.Where(a => a.AckedAt <= killedAt && !lostOffsets.Contains(a.Offset)).ToList();
        if (lost.Count > 0 && survivedBefore.Count > 0)
        {
            var firstLost = lost.MinBy(a => a.Offset)!;
            foreach (var ack in survivedBefore.Where(a => a.Offset > firstLost.Offset))
            {
                violations.Add($"{ack.Topic}={ack.Value}@{ack.Offset} survived though {firstLost.Topic}={firstLost.Value}@{firstLost.Offset} before it was lost");
            }
        }
    }

    /// <summary>The promoted log runs from its first offset to its head without a gap.</summary>
    private static void CheckLogIsGapFree(PromotedLog log, List<string> violations)
    {
        var first = log.Records.Keys.First();
        if (log.Records.Count != log.Head - first + 1 || log.Records.Keys.Last() != log.Head)
        {
            violations.Add($"the promoted log holds {log.Records.Count} records from {first} to {log.Records.Keys.Last()} under a head of {log.Head}");
        }
    }

    /// <summary>
    /// Every silo's image, read at the promoted log's head, holds each topic's config as the log's last record of that
    /// topic sets it: no silo answers from records the promoted server no longer has.
    /// </summary>
    private static async Task CheckImagesEqualLogAsync(HttpClient http, SiloSupervisor silos, PromotedLog log, IReadOnlyList<string> topics, List<string> violations)
    {
        foreach (var topic in topics)
        {
            var last = log.Records.Last(r => r.Value.Key == topic);
            var match = System.Text.RegularExpressions.Regex.Match(last.Value.Payload, "\"" + Config.Replace(".", "\\.", StringComparison.Ordinal) + "\"\\s*:\\s*\"(\\d+)\"");
            if (!match.Success)
            {
                violations.Add($"the last record of {topic} (offset {last.Key}) has no {Config}: {last.Value.Payload}");
                continue;
            }

            foreach (var silo in silos.Current)
            {
                using var answer = await http.GetAsync(new Uri(silo.BaseAddress, $"v1/topics/{topic}/configs?minOffset={log.Head.ToString(CultureInfo.InvariantCulture)}"));
                var body = answer.IsSuccessStatusCode ? await answer.Content.ReadFromJsonAsync<TopicConfigsResponse>() : null;
                var value = body?.Configs.SingleOrDefault(c => c.Name == Config)?.Value;
                if (value != match.Groups[1].Value)
                {
                    violations.Add($"silo {silo.BaseAddress} has {topic} {Config}={value ?? $"({(int)answer.StatusCode})"} at offset {body?.MetadataOffset}, the promoted log {match.Groups[1].Value} at {last.Key}");
                }
            }
        }
    }

    /// <summary>Each writer's values grow, so each topic's value now is at least the last one acknowledged.</summary>
    private static async Task<List<string>> FindFinalStateLostAsync(MetaClient client, IReadOnlyList<Ack> acks)
    {
        var lost = new List<string>();
        foreach (var group in acks.GroupBy(a => a.Topic))
        {
            var last = group.MaxBy(a => a.Value)!;
            var configs = await client.DescribeTopicConfigsAsync(group.Key, last.Offset);
            var now = long.Parse(configs.Configs.Single(c => c.Name == Config).Value, CultureInfo.InvariantCulture);
            if (now < last.Value)
            {
                lost.Add($"{group.Key}={last.Value}@{last.Offset} (state holds {now})");
            }
        }

        return lost;
    }
}
