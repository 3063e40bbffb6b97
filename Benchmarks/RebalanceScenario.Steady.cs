using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Benchmarks;

/// <summary>Steady heartbeats of stable members: wrk from separate processes, then the SDK in this process.</summary>
public static partial class RebalanceScenario
{
    /// <summary>Steady heartbeats of every member of <paramref name="groups"/> (all stable): first with wrk in separate
    /// processes (one per silo, each sending the heartbeats of the groups its silo coordinates), then through the SDK in
    /// this process; no group may write.</summary>
    private static async Task RunSteadyHeartbeatsAsync(BenchCluster cluster, List<BenchGroup> groups, TimeSpan warmup, TimeSpan duration)
    {
        var members = groups.SelectMany(g => g.Members.Where(m => !m.Left)).ToList();
        var services = cluster.Silos[0].App.Services;
        var groupType = services.GetRequiredService<GrainTypeRegistry>().GetInterface(typeof(IConsumerGroupGrain)).GrainType;
        var dispatchers = cluster.Silos.Select(s => s.App.Services.GetRequiredService<ClusterCallDispatcher>()).ToList();
        var files = new List<string>();
        var targets = new List<Uri>();
        var storage = cluster.Storage;
        try
        {
            for (var i = 0; i < cluster.Silos.Count; i++)
            {
                var silo = i;
                var text = new StringBuilder();
                foreach (var member in members.Where(m => dispatchers[silo].IsLocalOwner(new GrainId(groupType, m.Group.Id))))
                {
                    text.Append(member.Group.Id).Append(' ').Append(JsonSerializer.Serialize(member.Heartbeat(), Json)).Append('\n');
                }

                // A silo that coordinates none of the groups (only with tiny shapes) gets no wrk process.
                if (text.Length > 0)
                {
                    var file = Path.Combine(Path.GetTempPath(), $"orleans-meta-bench-heartbeats-{Guid.NewGuid():N}.txt");
                    await File.WriteAllTextAsync(file, text.ToString());
                    files.Add(file);
                    targets.Add(cluster.Silos[silo].Address);
                }
            }

            var threads = cluster.Silos.Count == 1 ? 2 : 1;
            async Task<WrkRun[]> RunAllAsync(string scenario, TimeSpan length) => await Task.WhenAll(targets.Select((address, i) => Wrk.RunScriptAsync(
                scenario, address, InFlight / targets.Count + (i < InFlight % targets.Count ? 1 : 0), threads, length, "group-heartbeats.lua",
                [files[i], threads.ToString(CultureInfo.InvariantCulture)])));

            await ApiWriteScenario.WarmUpAsync(warmup + warmup, async slice => await RunAllAsync("warm-up", slice), cluster.Run);
            var writes = storage.Sum(s => s.Writes);
            var forwardedBefore = cluster.Forwarded();
            var load = LoadAverage();
            var cpuBefore = Environment.CpuUsage.TotalTime;
            var scenario = $"steady heartbeats, {members.Count:N0} stable members, {cluster.Where}, to the coordinator";
            var runs = await RunAllAsync(scenario, duration);
            var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
            var forwarded = cluster.Forwarded() - forwardedBefore;
            await Task.Delay(500);
            var written = storage.Sum(s => s.Writes) - writes;
            for (var i = 0; i < runs.Length; i++)
            {
                cluster.Run.Check(runs.Length == 1 ? scenario : $"{scenario}, wrk to silo {i + 1}", runs[i], expectNon2xx: false);
            }

            var measurement = new Measurement($"{scenario} [wrk ×{runs.Length}]", InFlight, runs.Sum(r => r.Measurement.Operations),
                TimeSpan.FromTicks(runs.Max(r => r.Measurement.Elapsed.Ticks)), runs.Max(r => r.Measurement.P50Micros), runs.Max(r => r.Measurement.P99Micros));
            cluster.Run.Results.Add(measurement);
            var requests = runs.Sum(r => r.Requests);
            cluster.Run.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{scenario} (wrk, {InFlight} connections; load average {load}): {measurement.PerSecond:N0} heartbeats/s, p50 {measurement.P50Micros / 1000:0.00} ms, " +
                $"p99 {measurement.P99Micros / 1000:0.00} ms (highest of the wrk processes); silos' CPU {cpu.TotalSeconds / measurement.Elapsed.TotalSeconds:0.00} cores = " +
                $"{cpu.TotalMicroseconds / Math.Max(1, requests):N0} µs per heartbeat; {forwarded / (double)Math.Max(1, requests):P0} forwarded; {written} state writes during the run"));
            if (written > 0)
            {
                cluster.Run.Fail($"  !! {scenario}: {written} state writes while every member was stable (heartbeats should stay in memory)");
            }

            // The same through the SDK in this process: the difference in CPU per heartbeat is the SDK's own cost.
            writes = storage.Sum(s => s.Writes);
            load = LoadAverage();
            cpuBefore = Environment.CpuUsage.TotalTime;
            var sdkHeartbeats = 0L;
            var sdk = await LoadRunner.RunAsync($"steady heartbeats, {members.Count:N0} stable members, {cluster.Where}, SDK in the silos' process", InFlight, warmup, duration, async (worker, n) =>
            {
                // Worker w walks members w, w + 64, ... (round robin, so a shape smaller than 64 members works too).
                var member = members[(int)((worker + n * InFlight) % members.Count)];
                await cluster.Client.SendGroupHeartbeatAsync(member.Group.Id, member.Heartbeat());
                Interlocked.Increment(ref sdkHeartbeats);
            });
            var sdkCpu = Environment.CpuUsage.TotalTime - cpuBefore;
            written = storage.Sum(s => s.Writes) - writes;
            cluster.Run.Results.Add(sdk);
            cluster.Run.Notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{sdk.Scenario} (load average {load}): {sdk.PerSecond:N0} heartbeats/s, p50 {sdk.P50Micros / 1000:0.00} ms, p99 {sdk.P99Micros / 1000:0.00} ms; " +
                $"process CPU {sdkCpu.TotalMicroseconds / Math.Max(1, Interlocked.Read(ref sdkHeartbeats)):N0} µs per heartbeat (silos and SDK, warm-up included); {written} state writes"));
        }
        finally
        {
            files.ForEach(File.Delete);
        }
    }
}
