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
/// <param name="Acknowledged">Writes the service acknowledged (200 with a metadata offset), before and after the crash.</param>
/// <param name="AcknowledgedBeforeKill">Of those, acknowledged before the primary was killed.</param>
/// <param name="Lost">Acknowledged writes whose log record is missing from the promoted server, or holds another value.</param>
/// <param name="Failed">Requests that got no acknowledgement (503, timeout, refused connection).</param>
/// <param name="WithoutService">Last acknowledgement before the kill to the first acknowledgement of a request sent after it.</param>
/// <param name="Promotion">How long pg_ctl promote took (started at once after the kill: failure detection is not part of it).</param>
/// <param name="LostDetails">Each lost write: topic, value, offset.</param>
public sealed record FailoverReport(
    bool Synchronous,
    int Silos,
    int Writers,
    int Acknowledged,
    int AcknowledgedBeforeKill,
    int Lost,
    int Failed,
    TimeSpan WithoutService,
    TimeSpan Promotion,
    IReadOnlyList<string> LostDetails)
{
    public override string ToString() =>
        FormattableString.Invariant(
            $"replication={(Synchronous ? "sync" : "async")} silos={Silos} writers={Writers} acknowledged={Acknowledged} acknowledged_before_kill={AcknowledgedBeforeKill} lost={Lost} failed_requests={Failed} without_service_ms={WithoutService.TotalMilliseconds:F0} promote_ms={Promotion.TotalMilliseconds:F0}")
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

    public static async Task<FailoverReport> RunAsync(bool synchronous, int siloCount, int writers, int acksBeforeKill, int acksAfterKillPerWriter)
    {
        await using var pair = await PostgresPair.StartAsync(synchronous);
        var clusterId = $"failover-{Guid.NewGuid():N}"[..24];
        var secret = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        var silos = new List<SiloProcess>();
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            for (var i = 0; i < siloCount; i++)
            {
                silos.Add(SiloProcess.Start(pair.ConnectionString, clusterId, secret));
            }

            foreach (var silo in silos)
            {
                await Eventually.Until(() => IsReadyAsync(http, silo), $"silo {silo.BaseAddress} is ready", TimeSpan.FromSeconds(60));
            }

            using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = silos.Select(s => s.BaseAddress).ToList() });
            using var stopping = new CancellationTokenSource();
            var broker = Task.Run(() => BrokerAsync(client, stopping.Token));
            await Eventually.Until(async () => (await client.GetMetadataAsync()).Brokers.Count > 0, "the broker is unfenced", TimeSpan.FromSeconds(60));
            var topics = Enumerable.Range(0, writers).Select(i => $"failover-{i}").ToArray();
            foreach (var topic in topics)
            {
                await client.CreateTopicAsync(new CreateTopicRequest(topic, Partitions: 1, ReplicationFactor: 1));
            }

            var acks = new ConcurrentQueue<Ack>();
            var failed = 0;
            long killedAt = long.MaxValue;
            var loops = topics.Select((topic, i) => Task.Run(async () =>
            {
                var silo = silos[i % silos.Count];
                for (var value = 1000L; !stopping.IsCancellationRequested; value++)
                {
                    var sentAt = Stopwatch.GetTimestamp();
                    var offset = await TryWriteAsync(http, silo.BaseAddress, topic, value, stopping.Token);
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

            await Eventually.Until(() => acks.Count >= acksBeforeKill, $"{acksBeforeKill} writes acknowledged", TimeSpan.FromSeconds(60));
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
            // the promoted server (otherwise its image advances only by polling).
            foreach (var silo in silos)
            {
                await Eventually.Until(() => IsReadyAsync(http, silo), $"silo {silo.BaseAddress} is ready after the failover", TimeSpan.FromSeconds(30));
                await Eventually.Until(() => silo.Output.Contains("Listening for metadata log appends of cluster " + clusterId + " again", StringComparison.Ordinal),
                    $"silo {silo.BaseAddress} listens for log appends again", TimeSpan.FromSeconds(30));
            }

            var all = acks.ToArray();
            var lastBefore = all.Where(a => a.AckedAt <= killedAt).Max(a => a.AckedAt);
            var firstAfter = all.Where(a => a.SentAt > killedAt).Min(a => a.AckedAt);
            var lost = await FindLostAsync(pair.ReplicaOnly, clusterId, all);
            var finalLost = await FindFinalStateLostAsync(client, all);
            return new FailoverReport(
                synchronous, siloCount, writers, all.Length, all.Count(a => a.AckedAt <= killedAt), lost.Count + finalLost.Count, failed,
                Stopwatch.GetElapsedTime(lastBefore, firstAfter), promotion, [.. lost, .. finalLost]);
        }
        catch (Exception exception)
        {
            throw new InvalidOperationException(
                $"The failover run failed: {exception.Message}\n" + string.Join("\n", silos.Select(s => $"--- {s.BaseAddress}\n{s.Output}")), exception);
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    private static async Task<bool> IsReadyAsync(HttpClient http, SiloProcess silo)
    {
        try
        {
            using var answer = await http.GetAsync(new Uri(silo.BaseAddress, "health/ready"));
            return answer.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
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

    /// <summary>Every acknowledged write must be in the promoted server's metadata log at its offset, with its value.</summary>
    private static async Task<List<string>> FindLostAsync(string connectionString, string clusterId, IReadOnlyList<Ack> acks)
    {
        var lost = new List<string>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var logged = new Dictionary<long, (string Key, string Payload)>();
        await using (var command = new NpgsqlCommand("SELECT log_offset, key, payload FROM metadata_log WHERE cluster_id = $1", connection))
        {
            command.Parameters.AddWithValue(clusterId);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                logged[reader.GetInt64(0)] = (reader.GetString(1), Encoding.UTF8.GetString(reader.GetFieldValue<byte[]>(2)));
            }
        }

        foreach (var ack in acks)
        {
            var value = $"\"{ack.Value.ToString(CultureInfo.InvariantCulture)}\"";
            if (!logged.TryGetValue(ack.Offset, out var record) || record.Key != ack.Topic || !record.Payload.Contains(value, StringComparison.Ordinal))
            {
                lost.Add($"{ack.Topic}={ack.Value}@{ack.Offset} (log)");
            }
        }

        return lost;
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
