using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Cluster.PostgreSql;
using OrleansMeta.Runtime.Persistence.PostgreSql;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Metadata reads served from a silo's in-memory image over HTTP, next to PostgreSQL's point-select rate and a bare
/// ASP.NET Core endpoint returning the same bytes from a static array (the transport's ceiling), all in one run; and the
/// time from a broker's session expiry until all its partitions are re-led and visible in the image.
/// </summary>
public static class MetadataScenario
{
    public static async Task<IReadOnlyList<Measurement>> RunReadsAsync(string connectionString, TimeSpan warmup, TimeSpan duration)
    {
        await using var silo = await StartSiloAsync(connectionString, sessionTimeout: TimeSpan.FromSeconds(9));
        var grains = silo.App.Services.GetRequiredService<IGrainFactory>();
        using var heartbeats = new CancellationTokenSource();
        var brokers = await RegisterBrokersAsync(grains, silo.App.Services.GetRequiredService<MetadataImageService>(), 3, heartbeats.Token);
        var created = await grains.GetGrain<ITopicGrain>("reads").CreateAsync(new CreateTopic("reads", 12, 3, null, null));
        await silo.App.Services.GetRequiredService<MetadataImageService>().WaitForAsync(created.MetadataOffset, TimeSpan.FromSeconds(10));

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = silo.Address };
        var path = "/v1/metadata?topics=reads";
        var bytes = await http.GetByteArrayAsync(path);

        // The ceiling: the same bytes from a static array on a bare endpoint in this process.
        var port = FreePort();
        var bareBuilder = WebApplication.CreateSlimBuilder([$"--urls=http://127.0.0.1:{port}"]);
        bareBuilder.Logging.ClearProviders();
        await using var bare = bareBuilder.Build();
        bare.MapGet("/static", () => Results.Bytes(bytes, "application/json"));
        await bare.StartAsync();
        using var bareHttp = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var results = new List<Measurement>();
        var label = $"GET /v1/metadata (12 partitions, {bytes.Length} B) from the image";
        var ceiling = $"ceiling: bare endpoint, same {bytes.Length} B from a static array";
        if (Wrk.IsAvailable)
        {
            // Warm both servers up first: the first seconds run unoptimised (tier-0) code.
            var siloUrl = new Uri(silo.Address, path);
            var bareUrl = new Uri($"http://127.0.0.1:{port}/static");
            await Wrk.RunAsync("warm-up", siloUrl, 64, warmup + warmup);
            await Wrk.RunAsync("warm-up", bareUrl, 64, warmup + warmup);
            results.Add(await Wrk.RunAsync(label, siloUrl, 64, duration));
            results.Add(await Wrk.RunAsync(ceiling, bareUrl, 64, duration));
        }

        results.Add(await LoadRunner.RunAsync(label, 64, warmup, duration, async (_, _) => (await http.GetAsync(path)).EnsureSuccessStatusCode().Dispose()));
        results.Add(await LoadRunner.RunAsync(ceiling, 64, warmup, duration, async (_, _) => (await bareHttp.GetAsync("/static")).EnsureSuccessStatusCode().Dispose()));
        results.Add(await LoadRunner.RunAsync("postgres: point SELECT of one grain state row", 16, warmup, duration, async (worker, n) =>
        {
            await using var command = dataSource.CreateCommand(
                "SELECT payload FROM grain_state WHERE cluster_id = $1 AND grain_type = 'topic' AND grain_key = 'reads' AND state_name = 'topic'");
            command.Parameters.AddWithValue(silo.ClusterId);
            await command.ExecuteScalarAsync();
        }));
        await heartbeats.CancelAsync();
        await Task.WhenAll(brokers);
        return results;
    }

    /// <summary>Session expiry to all of the broker's partitions re-led, for each partition count, on
    /// <paramref name="silos"/> silos (the partitions' grains spread over them; the first one is watched).</summary>
    public static async Task<IReadOnlyList<string>> RunFailoverAsync(string connectionString, IReadOnlyList<int> partitionCounts, int silos = 1, bool allocationTypes = false)
    {
        var lines = new List<string>();
        using var sampler = allocationTypes ? new AllocationSampler() : null;
        foreach (var partitions in partitionCounts)
        {
            var session = TimeSpan.FromSeconds(3);
            var (clusterId, secret) = ($"bench-{Guid.NewGuid():N}"[..20], $"{Guid.NewGuid():N}{Guid.NewGuid():N}");
            await using var silo = await StartSiloAsync(connectionString, session, clusterId, secret);
            await using var others = new BenchSilos();
            for (var i = 1; i < silos; i++)
            {
                others.Add(await StartSiloAsync(connectionString, session, clusterId, secret));
            }

            var view = silo.App.Services.GetRequiredService<IClusterMembership>();
            while (view.CurrentView.ActiveSilos.Count < silos)
            {
                await Task.Delay(50);
            }

            var grains = silo.App.Services.GetRequiredService<IGrainFactory>();
            var image = silo.App.Services.GetRequiredService<MetadataImageService>();
            using var alive = new CancellationTokenSource();
            using var victimAlive = new CancellationTokenSource();
            var loops = await RegisterBrokersAsync(grains, image, 2, alive.Token);
            loops.AddRange(await RegisterBrokersAsync(grains, image, 1, victimAlive.Token, firstId: 3));
            var created = await grains.GetGrain<ITopicGrain>("failover").CreateAsync(new CreateTopic("failover", partitions, 3, null, null));
            await image.WaitForAsync(created.MetadataOffset, TimeSpan.FromSeconds(30));
            var led = image.Current.Topics["failover"].Partitions.Count(p => p.Leader == 3);

            var storages = others.Prepend(silo).Select(s => s.App.Services.GetRequiredService<PostgresGrainStorage>().Statistics).ToList();
            long Total(Func<PostgresStorageStatistics, long> counter) => storages.Sum(counter);
            var (transactions, writes, readBatches) = (Total(s => s.Transactions), Total(s => s.Writes), Total(s => s.ReadBatches));
            var handOvers = others.Prepend(silo).Select(s => s.App.Services.GetRequiredService<PostgresClusterMembership>().HandOver).ToList();
            long HandOver(Func<HandOverStatistics, long> counter) => handOvers.Sum(counter);
            var (peerQuestions, grainQuestions, handOverWaits, handOverWaited) =
                (HandOver(h => h.PeerQuestions), HandOver(h => h.GrainQuestions), HandOver(h => h.Waits), HandOver(h => h.Waited.Ticks));
            GC.Collect();
            var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
            sampler?.Start();
            if (sampler is not null)
            {
                // Marks the window's start, so that a trace can be attached to it (dotnet-trace collect -p <pid>).
                Console.WriteLine($"failover window starts: broker 3 stopped heartbeating (process {Environment.ProcessId})");
            }
            await victimAlive.CancelAsync();
            var watch = Stopwatch.StartNew();
            TimeSpan? fencedAt = null;
            var window = default(WindowCounters);

            // Only partitions not yet seen re-led are looked at again: polling all 100k every 5 ms took CPU from the
            // failover it measures, on two cores. A partition, once re-led to a live broker, stays so here.
            var pending = Enumerable.Range(0, partitions).ToList();
            while (watch.Elapsed < TimeSpan.FromMinutes(2))
            {
                var current = image.Current;
                if (fencedAt is null && current.Brokers[3].IsFenced)
                {
                    fencedAt = watch.Elapsed;
                    window = WindowCounters.Take();
                }

                var states = current.Topics["failover"].Partitions;
                pending.RemoveAll(i => states[i].Leader != 3 && states[i].Leader != -1);
                if (fencedAt is not null && pending.Count == 0)
                {
                    break;
                }

                await Task.Delay(5);
            }

            var releadAt = watch.Elapsed;
            var spent = WindowCounters.Take() - window;
            sampler?.Stop();
            var retained = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
            lines.Add($"{partitions,7} partitions ({led} led by the dead broker), {silos} silo{(silos > 1 ? "s" : "")}: session expired (fenced in the image) {fencedAt?.TotalSeconds:0.00} s after its last heartbeat, " +
                      $"all re-led and visible {(releadAt - (fencedAt ?? releadAt)).TotalMilliseconds:0} ms after that " +
                      $"({Total(s => s.Writes) - writes} state writes in {Total(s => s.Transactions) - transactions} transactions, {Total(s => s.ReadBatches) - readBatches} read batches, by then; " +
                      $"in that window the process used {spent.Cpu.TotalMilliseconds:0} ms of CPU ({spent.Cpu.TotalMicroseconds / Math.Max(1, led):0} µs per re-led partition), " +
                      $"allocated {spent.Allocated / 1048576.0:0} MiB ({spent.Allocated / Math.Max(1, led) / 1024.0:0.0} KiB per re-led partition), " +
                      $"GCs gen0/1/2 {spent.Gen0}/{spent.Gen1}/{spent.Gen2}, GC pauses {spent.Paused.TotalMilliseconds:0} ms; " +
                      $"the live heap then held {retained / 1048576.0:0} MiB more than before the broker died, {retained / Math.Max(1, led) / 1024.0:0.0} KiB per re-led partition; " +
                      $"activations that asked a previous owner first: {HandOver(h => h.Waits) - handOverWaits}, waiting {TimeSpan.FromTicks(HandOver(h => h.Waited.Ticks) - handOverWaited).TotalMilliseconds:0} ms in all, " +
                      $"after {HandOver(h => h.PeerQuestions) - peerQuestions} peer and {HandOver(h => h.GrainQuestions) - grainQuestions} grain questions)");
            if (sampler is not null)
            {
                lines.Add("  allocated by type (the GC's samples, share of bytes): " +
                    string.Join(", ", sampler.Top(25).Select(t => $"{t.Type} {t.Share:P1}")));
                lines.Add("  collections by generation and reason: " + string.Join(", ", sampler.Collections().Select(c => $"{c.Collection} ×{c.Count}")));
            }

            await alive.CancelAsync();
            await Task.WhenAll(loops);
        }

        return lines;
    }

    /// <summary>The process's CPU time, allocations and collections at one moment (the silos run in this process).</summary>
    private readonly record struct WindowCounters(TimeSpan Cpu, long Allocated, int Gen0, int Gen1, int Gen2, TimeSpan Paused)
    {
        public static WindowCounters Take() => new(
            Process.GetCurrentProcess().TotalProcessorTime, GC.GetTotalAllocatedBytes(), GC.CollectionCount(0), GC.CollectionCount(1),
            GC.CollectionCount(2), GC.GetTotalPauseDuration());

        public static WindowCounters operator -(WindowCounters a, WindowCounters b) => new(
            a.Cpu - b.Cpu, a.Allocated - b.Allocated, a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.Paused - b.Paused);
    }

    /// <summary>
    /// Cold start: one silo creates <paramref name="topics"/> topics of <paramref name="partitionsPerTopic"/> partitions;
    /// then a second silo of the same cluster starts and the time until it serves the full metadata is measured.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RunColdStartAsync(string connectionString, int topics, int partitionsPerTopic)
    {
        var clusterId = $"bench-{Guid.NewGuid():N}"[..20];
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        await using var first = await StartSiloAsync(connectionString, TimeSpan.FromMinutes(5), clusterId, secret);
        var grains = first.App.Services.GetRequiredService<IGrainFactory>();
        var image = first.App.Services.GetRequiredService<MetadataImageService>();
        using var alive = new CancellationTokenSource();
        var loops = await RegisterBrokersAsync(grains, image, 3, alive.Token);
        var create = Stopwatch.StartNew();
        long offset = 0;
        for (var t = 0; t < topics; t++)
        {
            var created = await grains.GetGrain<ITopicGrain>($"cold-{t}").CreateAsync(new CreateTopic($"cold-{t}", partitionsPerTopic, 3, null, null));
            offset = created.MetadataOffset;
        }

        await image.WaitForAsync(offset, TimeSpan.FromMinutes(5));
        var created1 = create.Elapsed;
        var total = image.Current.Topics.Values.Sum(t => t.Partitions.Length);

        var start = Stopwatch.StartNew();
        await using var second = await StartSiloAsync(connectionString, TimeSpan.FromMinutes(5), clusterId, secret);
        var started = start.Elapsed;
        var secondImage = second.App.Services.GetRequiredService<MetadataImageService>();
        await secondImage.WaitForAsync(offset, TimeSpan.FromMinutes(5));
        var caughtUp = start.Elapsed;
        using var http = new HttpClient { BaseAddress = second.Address, Timeout = TimeSpan.FromMinutes(5) };
        var metadata = await http.GetByteArrayAsync($"/v1/metadata?topics=cold-0&minOffset={offset}");
        var served = start.Elapsed;
        await alive.CancelAsync();
        await Task.WhenAll(loops);
        return
        [
            $"cold start: {total:N0} partitions in {topics} topics (created and applied by the first silo in {created1.TotalSeconds:0.0} s); " +
            $"a second silo started in {started.TotalSeconds:0.0} s, held the full image {caughtUp.TotalSeconds:0.0} s after start, " +
            $"and served a {metadata.Length / 1024.0 / 1024.0:0.0} MiB metadata answer {served.TotalSeconds:0.0} s after start",
        ];
    }

    /// <summary>Registers brokers <paramref name="firstId"/>.. and keeps their sessions alive (heartbeat every 500 ms,
    /// reporting the image's offset as caught up) until <paramref name="stop"/>; a failed heartbeat is counted in
    /// <paramref name="failures"/>[0] when given, and the loop goes on.</summary>
    internal static async Task<List<Task>> RegisterBrokersAsync(
        IGrainFactory grains, MetadataImageService image, int count, CancellationToken stop, int firstId = 1, int[]? failures = null)
    {
        var loops = new List<Task>();
        for (var id = firstId; id < firstId + count; id++)
        {
            var broker = grains.GetGrain<IBrokerGrain>(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var registration = await broker.RegisterAsync(new RegisterBroker(Guid.NewGuid(), [new ListenerRecord("PLAINTEXT", $"b{id}", 9092, "PLAINTEXT")], null));
            await broker.HeartbeatAsync(new BrokerHeartbeat(registration.BrokerEpoch, registration.MetadataOffset, false));
            loops.Add(Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await broker.HeartbeatAsync(new BrokerHeartbeat(registration.BrokerEpoch, image.Current.Offset, false));
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception) when (failures is not null)
                    {
                        Interlocked.Increment(ref failures[0]);
                    }

                    await Task.Delay(500, stop).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            }, CancellationToken.None));
        }

        return loops;
    }

    internal static async Task<BenchSilo> StartSiloAsync(
        string connectionString, TimeSpan sessionTimeout, string? clusterIdOrNull = null, string? secretOrNull = null, IReadOnlyList<string>? extraArguments = null)
    {
        var clusterId = clusterIdOrNull ?? $"bench-{Guid.NewGuid():N}"[..20];
        var publicPort = FreePort();
        var builder = WebApplication.CreateBuilder([
            $"--urls=http://127.0.0.1:{publicPort}",
            $"--ConnectionStrings:Postgres={connectionString}",
            $"--Meta:ClusterId={clusterId}",
            $"--Meta:Cluster:ClusterSecret={secretOrNull ?? $"{Guid.NewGuid():N}{Guid.NewGuid():N}"}",
            $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{FreePort()}",
            $"--Meta:Brokers:SessionTimeout={sessionTimeout}",
            "--Meta:Controller:AutoLeaderRebalance=false",
            .. extraArguments ?? [],
            .. Environment.GetEnvironmentVariable("ORLEANS_META_BENCH_ARGS")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [],
        ]);
        builder.Logging.SetMinimumLevel(LogLevel.Error);
        builder.AddMetaSilo();
        var app = builder.Build();
        app.MapMetaSilo();
        await app.StartAsync();
        return new BenchSilo(app, new Uri($"http://127.0.0.1:{publicPort}"), clusterId, connectionString);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Silos started together and stopped together.</summary>
    internal sealed class BenchSilos : List<BenchSilo>, IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var silo in this)
            {
                await silo.DisposeAsync();
            }
        }
    }

    internal sealed record BenchSilo(WebApplication App, Uri Address, string ClusterId, string ConnectionString) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
