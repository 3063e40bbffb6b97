using System.Diagnostics;
using OrleansMeta.Client;

namespace OrleansMeta.Chaos;

/// <summary>
/// Starts its own PostgreSQL and three silo processes (each reaching PostgreSQL through its own proxy and reached by
/// its peers through another; see <see cref="SiloNetwork"/>), drives a
/// workload while injecting faults on a seeded schedule, heals everything, lets the cluster settle and checks the
/// history. Loopback only; bounded in time and operation count.
/// </summary>
public sealed class ChaosRunner
{
    private const string ClusterId = "chaos";

    // Declared before Settings, which reads them (static fields initialise in order).
    /// <summary>Short enough that members are removed within a run (a fault outlasts it), long enough that a member
    /// heartbeating every 300 ms through a moving coordinator usually keeps its place.</summary>
    private static readonly TimeSpan GroupSessionTimeout = TimeSpan.FromSeconds(4);

    private static readonly TimeSpan GroupRebalanceTimeout = TimeSpan.FromSeconds(30);

    // Fast failure detection (as the cluster tests use) so that faults are noticed and healed within a short run.
    private static readonly Dictionary<string, string> Settings = new(OrleansMeta.TestGrains.FastClusterSettings.Membership)
    {
        ["Meta:ClusterId"] = ClusterId,
        ["Meta:Cluster:ClusterSecret"] = "chaos-secret-0123456789abcdef0123456789abcdef",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Meta:Groups:HeartbeatInterval"] = "00:00:00.300",
        ["Meta:Groups:SessionTimeout"] = Format(GroupSessionTimeout),
        ["Meta:Groups:RebalanceTimeout"] = Format(GroupRebalanceTimeout),
        ["Meta:Groups:SessionCheckInterval"] = "00:00:00.200",
    };

    private readonly ChaosOptions _options;

    public ChaosRunner(ChaosOptions options) => _options = options;

    private static string Format(TimeSpan time) => time.ToString("c", System.Globalization.CultureInfo.InvariantCulture);

    public async Task<ChaosReport> RunAsync(CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.StartNew();
        var log = _options.Log;
        await using var postgres = await PostgresServer.StartAsync(_options.FreePort(), cancellationToken);
        log($"PostgreSQL on port {postgres.Port}");
        var logDirectory = Directory.CreateTempSubdirectory($"orleans-meta-chaos-{_options.Seed}-").FullName;
        log($"silo logs in {logDirectory}");
        var networks = new List<SiloNetwork>();
        var silos = new List<SiloProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var network = SiloNetwork.Create(i, postgres.Port, _options.FreePort());
                networks.Add(network);
                var settings = Settings.Append(new("ConnectionStrings:Postgres", postgres.ConnectionString(network.Postgres.Port)))
                    .Concat(network.Settings).Select(kv => $"--{kv.Key}={kv.Value}");
                silos.Add(new SiloProcess($"silo{i}", _options.FreePort(), settings, logDirectory));
            }

            foreach (var silo in silos)
            {
                silo.Start();
            }

            var cluster = new ClusterControl(postgres, silos, networks, log);
            await cluster.WaitAllReadyAsync(TimeSpan.FromSeconds(90), cancellationToken, revive: true);
            log("3 silos ready");

            var history = new History();
            using var client = new MetaClient(new MetaClientOptions
            {
                BootstrapUrls = [.. silos.Select(s => s.PublicUrl)],
                RequestTimeout = TimeSpan.FromSeconds(8),
                MaxAttempts = 3,
            });
            // Group calls make one attempt each, so that a refusal is definite and a lost answer is an unknown outcome.
            using var groupClient = new MetaClient(new MetaClientOptions
            {
                BootstrapUrls = [.. silos.Select(s => s.PublicUrl)],
                RequestTimeout = TimeSpan.FromSeconds(4),
                MaxAttempts = 1,
            });
            using var workloadStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            workloadStop.CancelAfter(_options.Duration);
            var watchers = new Watchers([.. silos.Select(s => s.PublicUrl)], count: 3);
            watchers.Start();
            var workload = new Workload(client, groupClient, history, _options, workloadStop);
            var faults = new FaultSchedule(cluster, _options);
            await Task.WhenAll(workload.RunAsync(workloadStop.Token), faults.RunAsync(workloadStop.Token));
            log($"workload done: {history.Operations.Count} operations; healing and settling");

            await cluster.HealAllAsync(cancellationToken);
            await cluster.WaitAllReadyAsync(TimeSpan.FromSeconds(90), cancellationToken, revive: true);
            var (metadataLog, images) = await cluster.SettleAsync(TimeSpan.FromSeconds(60), cancellationToken);
            var offsets = await workload.Groups.ReadOffsetsAsync(client, TimeSpan.FromSeconds(60), cancellationToken);
            await watchers.StopAtAsync(metadataLog.Head, TimeSpan.FromSeconds(60), cancellationToken);
            log($"watchers reached {string.Join(", ", watchers.Traces.Select(t => $"{t.Name} {t.Reached} ({t.RecordCount} records)"))}; head {metadataLog.Head}");
            var invariants = HistoryChecker.Check(history.Operations, metadataLog, images, GroupCheckInput.From(offsets, GroupSessionTimeout, GroupRebalanceTimeout),
                watchers.Traces);
            var report = new ChaosReport(_options.Seed, started.Elapsed, faults.Injected, history.Operations, metadataLog.Head, invariants) { SiloLogs = logDirectory };
            if (report.Violations.Count == 0 && report.ServerErrors.Count == 0 && !_options.KeepLogs)
            {
                foreach (var silo in silos)
                {
                    await silo.DisposeAsync();
                }

                Directory.Delete(logDirectory, recursive: true);
                report = report with { SiloLogs = null };
            }

            return report;
        }
        catch (Exception) when (silos.Count > 0)
        {
            foreach (var silo in silos)
            {
                log($"--- {silo.Name} (running: {silo.IsRunning}) last output:\n{silo.Tail}");
            }

            throw;
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }

            foreach (var network in networks)
            {
                await network.DisposeAsync();
            }
        }
    }
}
