using System.Diagnostics;

namespace OrleansMeta.Chaos;

/// <summary>Injects one fault at a time on a seeded schedule, heals it, waits for every silo to be ready again, pauses,
/// and goes on until the workload's time is up. Every kind comes up once before any repeats.</summary>
internal sealed class FaultSchedule(ClusterControl cluster, ChaosOptions options)
{
    private static readonly string[] Kinds = ["kill-9", "graceful-restart", "kill-controller", "pause", "postgres-restart", "cut-from-postgres", "stall-postgres", "cut-from-peers", "stall-peers"];

    /// <summary>How many kinds of fault there are; a run of at least this many faults injects each once.</summary>
    public static int KindCount => Kinds.Length;

    private readonly List<string> _injected = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public IReadOnlyList<string> Injected => _injected;

    public async Task RunAsync(CancellationToken stop)
    {
        var random = new Random(options.Seed * 7919);
        var order = new List<string>();
        try
        {
            await Task.Delay(options.FaultInterval, stop);
            while (!stop.IsCancellationRequested)
            {
                if (order.Count == 0)
                {
                    order.AddRange(Kinds.OrderBy(_ => random.Next()));
                }

                var kind = order[0];
                order.RemoveAt(0);
                var silo = cluster.Silos[random.Next(cluster.Silos.Count)];
                var what = await InjectAsync(kind, silo, stop);
                _injected.Add($"{_clock.Elapsed.TotalSeconds,6:F1}s {what}");
                options.Log($"fault: {what}");
                var revived = cluster.Revived.Count;
                await cluster.WaitAllReadyAsync(TimeSpan.FromSeconds(60), CancellationToken.None, revive: true);
                _injected.AddRange(cluster.Revived.Skip(revived).Select(r => $"{_clock.Elapsed.TotalSeconds,6:F1}s   then: {r}"));
                await Task.Delay(options.FaultInterval, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Time is up; the runner heals whatever is still broken.
        }
    }

    private async Task<string> InjectAsync(string kind, SiloProcess silo, CancellationToken stop)
    {
        // Hold times use no token: a fault is always healed before the schedule looks at the clock again.
        switch (kind)
        {
            case "kill-9":
                silo.Kill();
                await Task.Delay(options.FaultLength / 2);
                silo.Start();
                return $"kill -9 {silo.Name}, restarted";

            case "graceful-restart":
                await silo.StopAsync();
                silo.Start();
                return $"graceful restart of {silo.Name}";

            case "kill-controller":
                var controller = await cluster.ControllerSiloAsync(stop) ?? silo;
                controller.Kill();
                await Task.Delay(options.FaultLength / 2);
                controller.Start();
                return $"kill -9 {controller.Name} (controller), restarted";

            case "pause":
                silo.Pause();
                await Task.Delay(options.FaultLength);
                silo.Resume();
                return $"SIGSTOP {silo.Name} for {options.FaultLength.TotalSeconds:F0} s (> session timeout), SIGCONT";

            case "postgres-restart":
                await cluster.Postgres.RestartAsync(CancellationToken.None);
                return "PostgreSQL restarted (pg_ctl restart -m fast)";

            case "cut-from-postgres":
                cluster.PostgresProxyOf(silo).Cut();
                await Task.Delay(options.FaultLength);
                cluster.PostgresProxyOf(silo).Heal();
                return $"{silo.Name} cut off from PostgreSQL for {options.FaultLength.TotalSeconds:F0} s";

            case "stall-postgres":
                cluster.PostgresProxyOf(silo).Stall();
                await Task.Delay(options.FaultLength);
                cluster.PostgresProxyOf(silo).Heal();
                return $"{silo.Name}'s PostgreSQL traffic stalled for {options.FaultLength.TotalSeconds:F0} s";

            case "cut-from-peers":
                cluster.CutFromPeers(silo);
                await Task.Delay(options.FaultLength);
                cluster.HealPeers();
                return $"{silo.Name} cut off from its peers, both ways, for {options.FaultLength.TotalSeconds:F0} s";

            default:
                cluster.StallPeers(silo);
                await Task.Delay(options.FaultLength);
                cluster.HealPeers();
                return $"{silo.Name}'s traffic with its peers stalled, both ways, for {options.FaultLength.TotalSeconds:F0} s";
        }
    }
}
