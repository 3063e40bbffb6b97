using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Durable metadata writes through the public API (issue 9), driven by wrk from separate processes with 64 connections:
/// topic config changes over 1000 topics and AlterPartition from the leaders of 10k partitions, on one silo and on
/// three silos written at once (`--silos` picks the counts; with `--to-owner`, each silo's wrk process sends only the
/// writes whose grain that silo owns, as a client that talks to the owner would, so no write is forwarded); next to two references measured in the same run with 64 clients: etcd's put rate
/// through its JSON gateway (Debian's etcd-server, default durability) and PostgreSQL's single-row UPDATE rate
/// (pgbench) on the same server the silos write to.
/// </summary>
public static class ApiWriteScenario
{
    private const int Connections = 64;
    private const int ConfigTopics = 1000;
    private const int IsrPartitions = 10_000;
    private const string ConfigTopicPrefix = "cfg-";
    private const string IsrTopic = "isr";

    /// <summary>Partitions per batched AlterPartition request (a broker sends what it has pending, up to this many).</summary>
    private const int IsrBatch = 100;

    /// <summary>Topics per batched config request.</summary>
    private const int ConfigBatch = 100;

    public static async Task<(IReadOnlyList<Measurement> Results, IReadOnlyList<string> Notes, bool Failed)> RunAsync(
        string connectionString, IReadOnlyList<int> siloCounts, bool toOwner, TimeSpan warmup, TimeSpan duration, bool allocationTypes = false)
    {
        var missing = new List<string>();
        if (!Wrk.IsAvailable)
        {
            missing.Add("wrk (apt-get install wrk)");
        }

        if (!EtcdServer.IsAvailable)
        {
            missing.Add("etcd (apt-get install etcd-server)");
        }

        if (PgBench.Find() is null)
        {
            missing.Add("pgbench (PostgreSQL's server package)");
        }

        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"api-writes needs {string.Join(", ", missing)}; scripts/bench.sh installs them when run as root.");
        }

        using var run = new Run(allocationTypes ? new AllocationSampler() : null);

        // References first, each with its own warm-up.
        Measurement etcdPuts;
        await using (var etcd = await EtcdServer.StartAsync())
        {
            await Wrk.RunScriptAsync("warm-up", etcd.Address, Connections, 2, warmup, "etcd-put.lua", []);
            var puts = await Wrk.RunScriptAsync("etcd 3.4: put, 1000 keys, JSON gateway", etcd.Address, Connections, 2, duration, "etcd-put.lua", []);
            run.Check("etcd puts", puts, expectNon2xx: false);
            etcdPuts = puts.Measurement;
            run.Results.Add(etcdPuts);
        }

        var pgUpdates = await PgBench.RunUpdatesAsync(connectionString, Connections, warmup, duration);
        run.Results.Add(pgUpdates);

        var api = new List<Measurement>();
        foreach (var silos in siloCounts)
        {
            api.AddRange(await RunApiAsync(connectionString, silos, toOwner && silos > 1, warmup, duration, run));
        }

        run.Results.AddRange(api);
        run.Notes.Add("");
        run.Notes.Add($"{"ratio (2xx writes/s)",-52} {"/ etcd puts",12} {"/ PG updates",12}");
        foreach (var m in api)
        {
            run.Notes.Add($"{m.Scenario,-52} {m.PerSecond / etcdPuts.PerSecond,11:0.00}× {m.PerSecond / pgUpdates.PerSecond,11:0.00}×");
        }

        return (run.Results, run.Notes, run.Failed);
    }

    private static async Task<List<Measurement>> RunApiAsync(string connectionString, int siloCount, bool toOwner, TimeSpan warmup, TimeSpan duration, Run run)
    {
        var clusterId = $"bench-{Guid.NewGuid():N}"[..20];
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        var silos = new List<MetadataScenario.BenchSilo>();
        using var heartbeats = new CancellationTokenSource();
        var heartbeatFailures = new int[1];
        List<Task> loops = [];
        try
        {
            for (var i = 0; i < siloCount; i++)
            {
                silos.Add(await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(9), clusterId, secret));
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
            foreach (var silo in silos)
            {
                await UntilAsync(async () => (await http.GetAsync(new Uri(silo.Address, "/health/ready"))).IsSuccessStatusCode, $"silo {silo.Address} is ready");
            }

            var services = silos[0].App.Services;
            var grains = services.GetRequiredService<IGrainFactory>();
            var image = services.GetRequiredService<MetadataImageService>();
            var log = services.GetRequiredService<IMetadataLog>();
            loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, heartbeats.Token, failures: heartbeatFailures);
            await UntilAsync(() => Task.FromResult(Enumerable.Range(1, 3).All(id => image.Current.Brokers.TryGetValue(id, out var b) && b.IsActive)),
                "brokers 1 to 3 are registered and unfenced");

            await Parallel.ForEachAsync(Enumerable.Range(0, ConfigTopics), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (t, _) =>
                await grains.GetGrain<ITopicGrain>(TopicKeys.For($"{ConfigTopicPrefix}{t}"))
                    .CreateAsync(new CreateTopic($"{ConfigTopicPrefix}{t}", 1, 3, null, null)));
            await grains.GetGrain<ITopicGrain>(TopicKeys.For(IsrTopic)).CreateAsync(new CreateTopic(IsrTopic, IsrPartitions, 3, null, null));
            await AllAtHeadAsync(silos, log);

            // Batched requests go to any silo: a request's items have many owners.
            var whereAny = siloCount == 1 ? "1 silo" : $"{siloCount} silos";
            var where = toOwner ? $"{whereAny}, to the owner" : whereAny;
            var results = new List<Measurement>();
            var dispatchers = silos.Select(s => s.App.Services.GetRequiredService<ClusterCallDispatcher>()).ToList();
            var types = services.GetRequiredService<GrainTypeRegistry>();
            var topicType = types.GetInterface(typeof(ITopicGrain)).GrainType;
            var partitionType = types.GetInterface(typeof(IPartitionGrain)).GrainType;

            // Topic configs: the first seconds run unoptimised (tier-0) code, so warm up longer than the references.
            // To the owner, process i changes only the topics whose grain silo i owns (a list file per process).
            var ownedTopics = new List<string>();
            for (var i = 0; toOwner && i < silos.Count; i++)
            {
                var silo = i;
                var file = Path.Combine(Path.GetTempPath(), $"orleans-meta-bench-topics-{Guid.NewGuid():N}.txt");
                await File.WriteAllLinesAsync(file, Enumerable.Range(0, ConfigTopics).Select(t => $"{ConfigTopicPrefix}{t}")
                    .Where(name => dispatchers[silo].IsLocalOwner(new GrainId(topicType, TopicKeys.For(name)))));
                ownedTopics.Add(file);
            }

            var configArguments = (int process, int processes) => (IReadOnlyList<string>)
                [ConfigTopicPrefix, ConfigTopics.ToString(CultureInfo.InvariantCulture), Str(process), Str(processes), .. toOwner ? [ownedTopics[process]] : Array.Empty<string>()];
            await WarmUpAsync(warmup + warmup, slice => RunWrkAsync("warm-up", silos, slice, "topic-configs.lua", configArguments, run, check: false), run);
            results.Add(await RunWrkAsync($"PATCH topic configs, {ConfigTopics} topics, {where}", silos, duration, "topic-configs.lua", configArguments, run, check: true));

            // Batched, as Kafka's IncrementalAlterConfigs allows: ConfigBatch topics per request, to any silo (a
            // request's topics have many owners); counted in topics changed, not requests.
            var batchedConfigArguments = (int process, int processes) => (IReadOnlyList<string>)
                [ConfigTopicPrefix, ConfigTopics.ToString(CultureInfo.InvariantCulture), Str(process), Str(processes), Str(ConfigBatch)];
            await WarmUpAsync(warmup, slice => RunWrkAsync("warm-up", silos, slice, "topic-configs-batched.lua", batchedConfigArguments, run, check: false), run);
            results.Add(await RunWrkAsync($"topic configs batched ×{ConfigBatch}, topics changed, {ConfigTopics} topics, {whereAny}",
                silos, duration, "topic-configs-batched.lua", batchedConfigArguments, run, check: true, operationsCounter: "changed"));

            // AlterPartition: the script needs each partition's state at the start of every run (the warm-up changes it).
            // To the owner, each process gets a state file of its own with the partitions whose grain its silo owns.
            var stateFiles = Enumerable.Range(0, toOwner ? silos.Count : 1)
                .Select(_ => Path.Combine(Path.GetTempPath(), $"orleans-meta-bench-isr-{Guid.NewGuid():N}.txt")).ToList();
            var topicId = image.Current.Topics[IsrTopic].Topic.TopicId;
            Func<int, bool> OwnedBy(int silo) => partition => dispatchers[silo].IsLocalOwner(new GrainId(partitionType, PartitionKeys.For(topicId, partition)));
            async Task WriteStateFilesAsync()
            {
                for (var i = 0; i < stateFiles.Count; i++)
                {
                    await WriteStateFileAsync(stateFiles[i], silos, log, toOwner ? OwnedBy(i) : _ => true);
                }
            }

            try
            {
                var threads = ThreadsPerProcess(siloCount);
                var isrArguments = (int process, int processes) => (IReadOnlyList<string>)(toOwner
                    ? [stateFiles[process], "0", "1", Str(threads)]
                    : [stateFiles[0], Str(process), Str(processes), Str(threads)]);
                await WarmUpAsync(warmup + warmup, async slice =>
                {
                    await WriteStateFilesAsync();
                    await RunWrkAsync("warm-up", silos, slice, "alter-partition.lua", isrArguments, run, check: false);
                }, run);
                await WriteStateFilesAsync();
                results.Add(await RunWrkAsync($"AlterPartition, {IsrPartitions / 1000}k partitions, {where}",
                    silos, duration, "alter-partition.lua", isrArguments, run, check: true));

                // Batched, as brokers send AlterPartition: up to IsrBatch partitions of one leader per request, to any
                // silo (a request's partitions have many owners); counted in partitions changed, not requests.
                var allPartitions = Path.Combine(Path.GetTempPath(), $"orleans-meta-bench-isr-{Guid.NewGuid():N}.txt");
                stateFiles.Add(allPartitions); // removed with the others
                var batchedArguments = (int process, int processes) => (IReadOnlyList<string>)
                    [allPartitions, Str(process), Str(processes), Str(threads), Str(IsrBatch)];
                await WarmUpAsync(warmup, async slice =>
                {
                    await WriteStateFileAsync(allPartitions, silos, log, _ => true);
                    await RunWrkAsync("warm-up", silos, slice, "alter-partitions.lua", batchedArguments, run, check: false);
                }, run);
                await WriteStateFileAsync(allPartitions, silos, log, _ => true);
                results.Add(await RunWrkAsync($"AlterPartition batched ×{IsrBatch}, partitions changed, {IsrPartitions / 1000}k partitions, {whereAny}",
                    silos, duration, "alter-partitions.lua", batchedArguments, run, check: true, operationsCounter: "changed"));
            }
            finally
            {
                stateFiles.Concat(ownedTopics).ToList().ForEach(File.Delete);
            }

            if (Volatile.Read(ref heartbeatFailures[0]) > 0)
            {
                run.Notes.Add($"  {where}: {heartbeatFailures[0]} broker heartbeats failed during the run (the brokers may have been fenced)");
            }

            return results;
        }
        finally
        {
            await heartbeats.CancelAsync();
            await Task.WhenAll(loops);
            foreach (var silo in Enumerable.Reverse(silos))
            {
                await silo.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// One wrk process per silo, all at once, sharing <see cref="Connections"/> connections; the total counts 2xx answers
    /// of all of them, and its percentiles are the highest of the processes' (wrk's histograms are not merged).
    /// </summary>
    private static async Task<Measurement> RunWrkAsync(
        string scenario, List<MetadataScenario.BenchSilo> silos, TimeSpan duration, string script,
        Func<int, int, IReadOnlyList<string>> scriptArguments, Run run, bool check, string? operationsCounter = null)
    {
        var storage = silos.Select(s => s.App.Services.GetRequiredService<PostgresGrainStorage>().Statistics).ToList();
        var (transactions, writes, records, flushes) =
            (storage.Sum(s => s.Transactions), storage.Sum(s => s.Writes), storage.Sum(s => s.RecordsAppended), storage.Sum(s => s.Flushes));
        var threads = ThreadsPerProcess(silos.Count);
        if (check)
        {
            // Progress, and the moment to attach a profiler (perf record -p PID) to one scenario's measured seconds.
            Console.Error.WriteLine($"api-writes: measuring {scenario} for {duration.TotalSeconds:0} s (process {Environment.ProcessId})");
        }

        await using var sampler = check ? PgActivitySampler.Start(silos[0].ConnectionString) : null;
        var database = check ? await PgServerCpu.FindAsync(silos[0].ConnectionString) : null;
        var databaseBefore = database?.Total() ?? TimeSpan.Zero;
        // The silos run in this process and wrk, etcd and PostgreSQL in others, so this process's CPU is the silos'.
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
        var (allocatedBefore, gen0Before, gen1Before, gen2Before, pausedBefore) =
            (GC.GetTotalAllocatedBytes(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        if (check)
        {
            run.Allocations?.Start();
        }

        var runs = await Task.WhenAll(silos.Select((silo, i) => Wrk.RunScriptAsync(scenario, silo.Address,
            Connections / silos.Count + (i < Connections % silos.Count ? 1 : 0), threads, duration, script, scriptArguments(i, silos.Count))));

        var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
        var databaseCpu = database?.Total() - databaseBefore;
        var compiling = System.Runtime.JitInfo.GetCompilationTime() - jitBefore;
        var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
        var collections = $"{GC.CollectionCount(0) - gen0Before}/{GC.CollectionCount(1) - gen1Before}/{GC.CollectionCount(2) - gen2Before}";
        var paused = GC.GetTotalPauseDuration() - pausedBefore;
        run.Allocations?.Stop();
        var activity = sampler is null ? null : await sampler.StopAsync();

        // Requests in flight when wrk stopped still finish in the silo: let them land before the next run reads state.
        await Task.Delay(500);
        var measurement = runs.Length == 1
            ? runs[0].Measurement
            : new Measurement($"{scenario} [wrk ×{runs.Length}]", Connections, runs.Sum(r => r.Measurement.Operations),
                TimeSpan.FromTicks(runs.Max(r => r.Measurement.Elapsed.Ticks)), runs.Max(r => r.Measurement.P50Micros), runs.Max(r => r.Measurement.P99Micros));
        if (operationsCounter is not null)
        {
            // The script counted what each answer did (e.g. partitions changed by batched requests): that is the rate.
            measurement = measurement with { Operations = runs.Sum(r => r.Counters.GetValueOrDefault(operationsCounter)) };
        }
        if (check)
        {
            for (var i = 0; i < runs.Length; i++)
            {
                run.Check(runs.Length == 1 ? scenario : $"{scenario}, wrk to silo {i + 1}", runs[i], expectNon2xx: false);
            }

            var txns = storage.Sum(s => s.Transactions) - transactions;
            var rows = storage.Sum(s => s.Writes) - writes;
            var appended = storage.Sum(s => s.RecordsAppended) - records;
            var flushed = storage.Sum(s => s.Flushes) - flushes;
            var seconds = measurement.Elapsed.TotalSeconds;
            run.Notes.Add($"  {scenario}: storage committed {txns / seconds:N0} transactions/s, {rows / Math.Max(1.0, txns):0.0} rows " +
                          $"and {appended / Math.Max(1.0, txns):0.0} log records per transaction, {flushed / seconds:N0} flushes/s of " +
                          $"{appended / Math.Max(1.0, flushed):0.0} records (includes the 0.5 s after wrk stopped)");
            run.Notes.Add($"  {scenario}: PostgreSQL backends not idle, on average: {activity}");
            var answered = runs.Sum(r => r.Requests);
            run.Notes.Add($"  {scenario}: silo process CPU {cpu.TotalSeconds / seconds:0.00} cores, " +
                          $"{cpu.TotalMicroseconds / Math.Max(1, answered):N0} µs per answered request; JIT compiling {compiling.TotalSeconds:0.00} s of the run; " +
                          (databaseCpu is { } db
                              ? $"PostgreSQL CPU {db.TotalSeconds / seconds:0.00} cores, {db.TotalMicroseconds / Math.Max(1, answered):N0} µs per answered request"
                              : "PostgreSQL CPU not readable from here"));
            var memory = GC.GetGCMemoryInfo();
            using var process = System.Diagnostics.Process.GetCurrentProcess();
            run.Notes.Add($"  {scenario}: allocated {allocated / 1024.0 / Math.Max(1, answered):N1} KiB per answered request, " +
                          $"collections gen0/1/2 {collections}, GC pauses {paused.TotalMilliseconds:N0} ms; after the run: GC heap " +
                          $"{memory.HeapSizeBytes / 1048576.0:N0} MiB, committed {memory.TotalCommittedBytes / 1048576.0:N0} MiB, " +
                          $"process working set {Environment.WorkingSet / 1048576.0:N0} MiB (peak {process.PeakWorkingSet64 / 1048576.0:N0} MiB)");
            if (run.Allocations is { } types)
            {
                run.Notes.Add($"  {scenario}: allocated types (sampled): " + string.Join(", ", types.Top(20).Select(t => $"{t.Type} {t.Share:P1}")));
            }
            if (operationsCounter is not null)
            {
                var counted = runs.Sum(r => r.Counters.GetValueOrDefault(operationsCounter));
                var refused = runs.Sum(r => r.Counters.GetValueOrDefault("refused"));
                run.Notes.Add($"  {scenario}: {counted:N0} {operationsCounter} in {answered:N0} requests ({counted / (double)Math.Max(1, answered):0.0} each), " +
                              $"{cpu.TotalMicroseconds / Math.Max(1, counted):N0} µs of silo CPU and {allocated / 1024.0 / Math.Max(1, counted):N1} KiB allocated per one");
                if (refused > 0)
                {
                    run.Fail($"  !! {scenario}: {refused:N0} partitions were refused inside 200 answers (the script's epoch tracking is wrong, or a bug)");
                }
            }
        }

        return measurement;
    }

    /// <summary>
    /// Runs the warm-up for at least <paramref name="minimum"/>, then in slices of two seconds while the JIT still
    /// compiles (more than 2% of the slice's time, up to 60 s in all): on two shared cores the tier-up of a silo's hot
    /// code takes tens of seconds under load, and a run measured before it ends counts the compiler against every request.
    /// </summary>
    internal static async Task WarmUpAsync(TimeSpan minimum, Func<TimeSpan, Task> run, Run? notes = null)
    {
        var slice = TimeSpan.FromSeconds(2);
        var started = DateTime.UtcNow;
        var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
        await run(minimum);
        while (DateTime.UtcNow - started < TimeSpan.FromSeconds(60))
        {
            var jit = System.Runtime.JitInfo.GetCompilationTime();
            await run(slice);
            var compiling = System.Runtime.JitInfo.GetCompilationTime() - jit;
            if (compiling < slice * 0.02)
            {
                break;
            }
        }

        notes?.Notes.Add($"  warm-up: {(DateTime.UtcNow - started).TotalSeconds:0} s, {(System.Runtime.JitInfo.GetCompilationTime() - jitBefore).TotalSeconds:0.0} s of it compiling");
    }

    private static int ThreadsPerProcess(int processes) => processes == 1 ? 2 : 1;

    /// <summary>One line per partition of the ISR topic, from silo 1's image once every silo has applied the log head.</summary>
    private static async Task WriteStateFileAsync(string path, List<MetadataScenario.BenchSilo> silos, IMetadataLog log, Func<int, bool> include)
    {
        await AllAtHeadAsync(silos, log);
        var image = silos[0].App.Services.GetRequiredService<MetadataImageService>().Current;
        var text = new StringBuilder();
        foreach (var p in image.Topics[IsrTopic].Partitions.Where(p => include(p.Partition)))
        {
            var brokerEpoch = image.Brokers[p.Leader].Record.BrokerEpoch;
            text.Append(CultureInfo.InvariantCulture,
                $"{IsrTopic} {p.Partition} {p.Leader} {brokerEpoch} {p.LeaderEpoch} {p.PartitionEpoch} {string.Join(',', p.Replicas)} {string.Join(',', p.Isr)}\n");
        }

        await File.WriteAllTextAsync(path, text.ToString());
    }

    private static async Task AllAtHeadAsync(List<MetadataScenario.BenchSilo> silos, IMetadataLog log)
    {
        var head = await log.GetHeadAsync(CancellationToken.None);
        foreach (var silo in silos)
        {
            await silo.App.Services.GetRequiredService<MetadataImageService>().WaitForAsync(head, TimeSpan.FromMinutes(1));
        }
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Gave up waiting until {what}.");
            }

            await Task.Delay(100);
        }
    }

    private static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal sealed class Run(AllocationSampler? allocations = null) : IDisposable
    {
        /// <summary>With <c>--alloc-types</c>: which types each measured run allocated.</summary>
        public AllocationSampler? Allocations { get; } = allocations;

        public void Dispose() => Allocations?.Dispose();

        public List<Measurement> Results { get; } = [];

        public List<string> Notes { get; } = [];

        public bool Failed { get; private set; }

        /// <summary>Marks the run as not a clean measurement, with a note that says why.</summary>
        public void Fail(string note)
        {
            Failed = true;
            Notes.Add(note);
        }

        /// <summary>Every answer should be 2xx: a 409 from AlterPartition means the script's epoch tracking is wrong, a 5xx a bug.</summary>
        public void Check(string scenario, WrkRun wrk, bool expectNon2xx)
        {
            Notes.Add($"  {scenario}: {wrk.Describe()}");
            foreach (var failure in wrk.FirstFailures)
            {
                Notes.Add($"    first non-2xx answer: {(failure.Length > 300 ? failure[..300] + "…" : failure)}");
            }

            if (!expectNon2xx && (wrk.NonSuccess > 0 || wrk.Starved > 0))
            {
                Failed = true;
                Notes.Add($"  !! {scenario}: {wrk.NonSuccess:N0} answers were not 2xx{(wrk.ServerErrors > 0 ? $" ({wrk.ServerErrors:N0} server errors)" : "")}");
            }
        }
    }
}
