using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Durable offset commits through the public API (issue 10) on a three-silo cluster (or as many as <c>--silos</c> says):
/// 1000 groups of 10 partitions (<c>--group-partitions</c>), committed over 64 connections, one partition per call and
/// every partition of the group per call (a Kafka consumer's commit of its assignment), once with each group's commits
/// sent to the group's coordinator and once through any silo (two of every three commits forwarded); next to PostgreSQL's single-row UPDATE rate (pgbench, 64 clients)
/// measured on the same server in the same run. First with wrk in separate processes (one per silo, its groups in a
/// file: to the coordinator, the groups that silo owns), so the load generator's CPU is not the silos'; then, with
/// <c>--sdk</c>, with 64 committers in this process through the SDK (<c>MetaClient</c>), sharing the silos' runtime.
/// </summary>
public static class GroupCommitScenario
{
    private const int Groups = 1000;
    private const int Committers = 64;
    private const string Topic = "commits";

    public static async Task<(List<Measurement> Results, List<string> Notes)> RunAsync(
        string connectionString, TimeSpan warmup, TimeSpan duration, bool sdk = false, int siloCount = 3, int partitionsPerGroup = 10,
        int connections = Committers)
    {
        if (!Wrk.IsAvailable)
        {
            throw new InvalidOperationException("group-commits needs wrk (apt-get install wrk; scripts/bench.sh installs it when run as root).");
        }

        if (PgBench.Find() is null)
        {
            throw new InvalidOperationException("group-commits needs pgbench for its reference (PostgreSQL's server package ships it; scripts/bench.sh installs it).");
        }

        var results = new List<Measurement>();
        var notes = new List<string>();
        var reference = await PgBench.RunUpdatesAsync(connectionString, Committers, warmup, duration);
        results.Add(reference);

        var clusterId = $"bench-{Guid.NewGuid():N}"[..20];
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        var silos = new List<MetadataScenario.BenchSilo>();
        using var heartbeats = new CancellationTokenSource();
        List<Task> loops = [];
        try
        {
            for (var i = 0; i < siloCount; i++)
            {
                silos.Add(await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(9), clusterId, secret));
            }

            var services = silos[0].App.Services;
            var grains = services.GetRequiredService<IGrainFactory>();
            var image = services.GetRequiredService<MetadataImageService>();
            loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, heartbeats.Token);
            await UntilAsync(() => Enumerable.Range(1, 3).All(id => image.Current.Brokers.TryGetValue(id, out var b) && b.IsActive), "brokers 1 to 3 are unfenced");
            await grains.GetGrain<ITopicGrain>(TopicKeys.For(Topic)).CreateAsync(new CreateTopic(Topic, partitionsPerGroup, 3, null, null));
            var head = await services.GetRequiredService<IMetadataLog>().GetHeadAsync(CancellationToken.None);
            foreach (var silo in silos)
            {
                await silo.App.Services.GetRequiredService<MetadataImageService>().WaitForAsync(head, TimeSpan.FromMinutes(1));
            }

            // Routed and not in the order A B B A, so that the machine's drift (it is shared) weighs on both alike. On one
            // silo every commit reaches its coordinator: two runs, both routed.
            var run = 0;
            bool[] order = siloCount == 1 ? [true, true] : [true, false, false, true];
            foreach (var partitionsPerCall in new[] { 1, partitionsPerGroup })
            {
                var rates = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
                foreach (var routed in order)
                {
                    var (measurement, forwardedShare, cpu) = await RunWrkCommittersAsync(silos, routed, partitionsPerCall, partitionsPerGroup, connections, ++run, warmup, duration, firstRun: run == 1, notes);
                    results.Add(measurement);
                    rates[routed].Add(measurement.PerSecond);
                    notes.Add($"{measurement.Scenario}: {measurement.PerSecond:N0} commits/s = {measurement.PerSecond * partitionsPerCall:N0} partitions/s = " +
                        $"{measurement.PerSecond / reference.PerSecond:0.00}× ({measurement.PerSecond * partitionsPerCall / reference.PerSecond:0.00}× in partitions) " +
                        $"pgbench's {Committers}-client single-row UPDATE rate ({reference.PerSecond:N0}/s); " +
                        $"p50 {measurement.P50Micros / 1000:0.0} ms, p99 {measurement.P99Micros / 1000:0.0} ms (highest of the wrk processes); " +
                        $"{forwardedShare:P0} of the group calls were forwarded; {cpu}");
                }

                notes.Add(siloCount == 1
                    ? $"wrk, {partitionsPerCall} partition(s)/call, one silo: {rates[true].Average():N0} commits/s (mean of two runs)"
                    : $"wrk, {partitionsPerCall} partition(s)/call: to the coordinator {rates[true].Average():N0} commits/s, through any silo {rates[false].Average():N0} " +
                      $"(means of two runs each): {rates[true].Average() / rates[false].Average():0.00}×");
            }

            foreach (var partitionsPerCall in sdk ? new[] { 1, partitionsPerGroup } : [])
            {
                var rates = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
                foreach (var routed in order)
                {
                    var (measurement, forwardedShare) = await RunCommittersAsync(silos, routed, partitionsPerCall, partitionsPerGroup, ++run, warmup, duration);
                    results.Add(measurement);
                    rates[routed].Add(measurement.PerSecond);
                    notes.Add($"{measurement.Scenario}: {measurement.PerSecond:N0} commits/s = {measurement.PerSecond * partitionsPerCall:N0} partitions/s = " +
                        $"{measurement.PerSecond / reference.PerSecond:0.00}× pgbench's {Committers}-client single-row UPDATE rate ({reference.PerSecond:N0}/s); " +
                        $"p50 {measurement.P50Micros / 1000:0.0} ms, p99 {measurement.P99Micros / 1000:0.0} ms; {forwardedShare:P0} of the group calls were forwarded");
                }

                notes.Add(siloCount == 1
                    ? $"SDK, {partitionsPerCall} partition(s)/call, one silo: {rates[true].Average():N0} commits/s (mean of two runs)"
                    : $"SDK, {partitionsPerCall} partition(s)/call: to the coordinator {rates[true].Average():N0} commits/s, through any silo {rates[false].Average():N0} " +
                      $"(means of two runs each): {rates[true].Average() / rates[false].Average():0.00}×");
            }

            return (results, notes);
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
    /// One wrk process per silo, <paramref name="connections"/> connections in all (64 unless <c>--connections</c> says). To the coordinator, process i commits the
    /// groups silo i owns; through any silo, every third group whoever owns it.
    /// </summary>
    private static async Task<(Measurement Measurement, double ForwardedShare, string Cpu)> RunWrkCommittersAsync(
        List<MetadataScenario.BenchSilo> silos, bool routed, int partitionsPerCall, int partitionsPerGroup, int connections, int run, TimeSpan warmup, TimeSpan duration, bool firstRun, List<string> notes)
    {
        var services = silos[0].App.Services;
        var grains = services.GetRequiredService<IGrainFactory>();
        var groupType = services.GetRequiredService<OrleansMeta.Runtime.Calls.GrainTypeRegistry>().GetInterface(typeof(IConsumerGroupGrain)).GrainType;
        var dispatchers = silos.Select(s => s.App.Services.GetRequiredService<ClusterCallDispatcher>()).ToList();
        var groups = Enumerable.Range(0, Groups).Select(g => $"wrk{run}-{g}").ToList();
        var database = await PgServerCpu.FindAsync(silos[0].ConnectionString);

        // One commit per group first (activations), so that the measured commits are the steady state's.
        await Parallel.ForEachAsync(groups, new ParallelOptions { MaxDegreeOfParallelism = Committers }, async (group, _) =>
            await grains.GetGrain<IConsumerGroupGrain>(group).CommitAsync(new CommitOffsetsRequest(null, -1, [new PartitionOffset(Topic, 0, 0)])));
        var files = new List<string>();
        try
        {
            for (var i = 0; i < silos.Count; i++)
            {
                var silo = i;
                var mine = routed
                    ? groups.Where(g => dispatchers[silo].IsLocalOwner(new GrainId(groupType, g)))
                    : groups.Where((_, index) => index % silos.Count == silo);
                var file = Path.Combine(Path.GetTempPath(), $"orleans-meta-bench-groups-{Guid.NewGuid():N}.txt");
                await File.WriteAllLinesAsync(file, mine);
                files.Add(file);
            }

            var arguments = (int silo) => (IReadOnlyList<string>)[files[silo], Topic, $"{partitionsPerGroup}", $"{partitionsPerCall}", "1"];
            async Task<WrkRun[]> RunAllAsync(string scenario, TimeSpan length) => await Task.WhenAll(silos.Select((silo, i) => Wrk.RunScriptAsync(
                scenario, silo.Address, connections / silos.Count + (i < connections % silos.Count ? 1 : 0), 1, length, "group-commits.lua", arguments(i))));

            if (firstRun)
            {
                await ApiWriteScenario.WarmUpAsync(warmup + warmup, async slice => await RunAllAsync("warm-up", slice));
            }
            else
            {
                await RunAllAsync("warm-up", warmup);
            }

            long ForwardedNow() => dispatchers.Sum(d => d.ForwardedCalls(groupType));
            var forwardedBefore = ForwardedNow();
            var stores = silos.Select(s => s.App.Services.GetService<PostgresOffsetStore>()).OfType<PostgresOffsetStore>().ToList();
            (long Batches, long Calls, long Compactions) StoreTotals() =>
                (stores.Sum(s => s.Statistics.Batches), stores.Sum(s => s.Statistics.Calls), stores.Sum(s => s.Statistics.Compactions));
            var storeBefore = StoreTotals();
            var (gen0Before, gen1Before, gen2Before, pausedBefore) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
            var cpuBefore = Environment.CpuUsage.TotalTime;
            var databaseBefore = database?.Total() ?? TimeSpan.Zero;
            var scenario = $"API commit via wrk, {partitionsPerCall} partition{(partitionsPerCall == 1 ? "" : "s")}/call, " +
                (routed ? "to the coordinator" : "through any silo") + $" (run {run})";
            var runs = await RunAllAsync(scenario, duration);
            var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
            var databaseCpu = database?.Total() - databaseBefore;
            var forwarded = ForwardedNow() - forwardedBefore;
            var gc = $"collections gen0/1/2 {GC.CollectionCount(0) - gen0Before}/{GC.CollectionCount(1) - gen1Before}/{GC.CollectionCount(2) - gen2Before}, " +
                $"GC pauses {(GC.GetTotalPauseDuration() - pausedBefore).TotalMilliseconds:N0} ms";
            var storeAfter = StoreTotals();
            var batching = stores.Count == 0 ? "" :
                $"; offset store: {(storeAfter.Calls - storeBefore.Calls) / (double)Math.Max(1, storeAfter.Batches - storeBefore.Batches):0.0} calls per transaction, " +
                $"{storeAfter.Compactions - storeBefore.Compactions:N0} group compactions";
            await Task.Delay(500);
            var requests = runs.Sum(r => r.Requests);
            foreach (var wrk in runs.Where(r => r.NonSuccess > 0 || r.Starved > 0))
            {
                notes.Add($"  !! {scenario}: {wrk.Describe()} {string.Join(" ", wrk.FirstFailures)}");
            }

            var measurement = new Measurement($"{scenario} [wrk ×{runs.Length}]", connections, runs.Sum(r => r.Measurement.Operations),
                TimeSpan.FromTicks(runs.Max(r => r.Measurement.Elapsed.Ticks)), runs.Max(r => r.Measurement.P50Micros), runs.Max(r => r.Measurement.P99Micros));
            var seconds = measurement.Elapsed.TotalSeconds;
            return (measurement, (double)forwarded / Math.Max(1, requests),
                $"silos' process CPU {cpu.TotalSeconds / seconds:0.00} cores, {cpu.TotalMicroseconds / Math.Max(1, requests):N0} µs per commit" +
                (databaseCpu is { } db ? $"; PostgreSQL CPU {db.TotalSeconds / seconds:0.00} cores, {db.TotalMicroseconds / Math.Max(1, requests):N0} µs per commit" : "") +
                $"; {gc}{batching}");
        }
        finally
        {
            foreach (var file in files)
            {
                File.Delete(file);
            }
        }
    }

    private static async Task<(Measurement Measurement, double ForwardedShare)> RunCommittersAsync(
        List<MetadataScenario.BenchSilo> silos, bool routed, int partitionsPerCall, int partitionsPerGroup, int run, TimeSpan warmup, TimeSpan duration)
    {
        // One client per silo, committer w using client w % 3: through any silo, the load is spread evenly and a group's
        // commits reach its owner directly only when the committer's silo happens to own it.
        var clients = silos.Select(s => new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [s.Address],
            RouteCallsToOwner = routed,
        })).ToList();
        try
        {
            var dispatchers = silos.Select(s => s.App.Services.GetRequiredService<ClusterCallDispatcher>()).ToList();
            long ForwardedNow() => dispatchers.Sum(d => d.ForwardedCalls("group"));
            string Group(int group) => $"run{run}-{group}";

            // One commit per group first (activations, and, routed, the answer that names each group's coordinator),
            // so that the forwarded share below is the steady state's.
            await Parallel.ForEachAsync(Enumerable.Range(0, Groups), new ParallelOptions { MaxDegreeOfParallelism = Committers }, async (group, _) =>
                await clients[group % Committers % clients.Count].CommitOffsetsAsync(Group(group), new CommitOffsetsRequest(null, -1, [new PartitionOffset(Topic, 0, 0)])));
            var forwardedBefore = ForwardedNow();
            var calls = 0L;
            var scenario = $"API commit via SDK, {partitionsPerCall} partition{(partitionsPerCall == 1 ? "" : "s")}/call, " +
                (routed ? "to the coordinator" : "through any silo") + $" (run {run})";
            var measurement = await LoadRunner.RunAsync(scenario, Committers, warmup, duration, async (worker, n) =>
            {
                // Worker w owns groups w, w + 64, ... and walks through them and their partitions.
                var owned = (Groups - worker + Committers - 1) / Committers;
                var group = worker + (int)(n % owned) * Committers;
                var first = (int)(n / owned % partitionsPerGroup);
                var offsets = new PartitionOffset[partitionsPerCall];
                for (var i = 0; i < partitionsPerCall; i++)
                {
                    offsets[i] = new PartitionOffset(Topic, (first + i) % partitionsPerGroup, n);
                }

                await clients[worker % clients.Count].CommitOffsetsAsync(Group(group), new CommitOffsetsRequest(null, -1, offsets));
                Interlocked.Increment(ref calls);
            });

            // Over the warm-up and the measured phase.
            var forwarded = ForwardedNow() - forwardedBefore;
            return (measurement, (double)forwarded / Math.Max(1, Interlocked.Read(ref calls)));
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>Waits up to a minute for <paramref name="condition"/>.</summary>
    internal static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Gave up waiting until {what}.");
            }

            await Task.Delay(100);
        }
    }
}
