using System.Net;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Tests.Shared;

namespace OrleansMeta.Chaos;

/// <summary>The runner's hands on the cluster: silo processes, their proxies to PostgreSQL and from their peers, the
/// server itself.</summary>
internal sealed class ClusterControl(PostgresServer postgres, IReadOnlyList<SiloProcess> silos, IReadOnlyList<SiloNetwork> networks, Action<string> log)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };

    public IReadOnlyList<SiloProcess> Silos => silos;

    public PostgresServer Postgres => postgres;

    /// <summary>Silos the supervisor started again after they stopped by themselves.</summary>
    public List<string> Revived { get; } = [];

    public TcpProxy PostgresProxyOf(SiloProcess silo) => networks[IndexOf(silo)].Postgres;

    /// <summary>Cuts <paramref name="silo"/> off from its peers both ways: its own peer proxy closes every connection
    /// and drops new ones (nobody reaches it), and every other silo's peer proxy does so for connections from its
    /// address (it reaches nobody). The public API and PostgreSQL stay reachable.</summary>
    public void CutFromPeers(SiloProcess silo) => Partition(silo, (proxy, from) => proxy.Cut(from));

    /// <summary>As <see cref="CutFromPeers"/>, but connections stay open and no byte moves, either way.</summary>
    public void StallPeers(SiloProcess silo) => Partition(silo, (proxy, from) => proxy.Stall(from));

    public void HealPeers()
    {
        foreach (var network in networks)
        {
            network.Peers.Heal();
        }
    }

    private void Partition(SiloProcess silo, Action<TcpProxy, IPAddress?> fault)
    {
        var isolated = networks[IndexOf(silo)];
        foreach (var network in networks)
        {
            fault(network.Peers, ReferenceEquals(network, isolated) ? null : isolated.Address);
        }
    }

    private int IndexOf(SiloProcess silo)
    {
        for (var i = 0; i < silos.Count; i++)
        {
            if (ReferenceEquals(silos[i], silo))
            {
                return i;
            }
        }

        throw new ArgumentException("Not one of this cluster's silos.", nameof(silo));
    }

    public static async Task<bool> IsReadyAsync(SiloProcess silo, CancellationToken cancellationToken)
    {
        try
        {
            using var answer = await Http.GetAsync(new Uri(silo.PublicUrl, "health/ready"), cancellationToken);
            return answer.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <param name="revive">Start again a silo whose process ended, as a supervisor (systemd, Kubernetes) would: a silo
    /// that reads itself declared dead after a pause or a cut from PostgreSQL stops by itself.</param>
    public async Task WaitAllReadyAsync(TimeSpan timeout, CancellationToken cancellationToken, bool revive = false)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            foreach (var silo in silos.Where(s => revive && !s.IsRunning))
            {
                log($"supervisor: {silo.Name} exited by itself; starting it again");
                Revived.Add($"{silo.Name} exited by itself (declared dead) and was started again");
                silo.Start();
            }

            var ready = await Task.WhenAll(silos.Select(s => IsReadyAsync(s, cancellationToken)));
            if (ready.All(r => r))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Silos not ready after {timeout}: {string.Join(", ", silos.Where((_, i) => !ready[i]).Select(s => $"{s.Name} (running {s.IsRunning})"))}");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    /// <summary>The silo that runs the controller now (GET /v1/cluster), if one is known.</summary>
    public async Task<SiloProcess?> ControllerSiloAsync(CancellationToken cancellationToken)
    {
        foreach (var silo in silos.Where(s => s.IsRunning && !s.IsPaused))
        {
            try
            {
                using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [silo.PublicUrl], RequestTimeout = TimeSpan.FromSeconds(3), MaxAttempts = 1 });
                var cluster = await client.GetClusterAsync(cancellationToken);
                if (cluster.Controller?.Silo is { } controller)
                {
                    var owner = cluster.Silos.FirstOrDefault(s => s.Endpoint == controller || s.Name == controller);
                    var name = owner?.Name ?? controller;
                    return silos.FirstOrDefault(s => s.Name == name || controller.Contains(s.Name, StringComparison.Ordinal));
                }
            }
            catch (Exception e) when (e is MetaApiException or HttpRequestException or TaskCanceledException)
            {
                // Ask the next silo.
            }
        }

        return null;
    }

    /// <summary>Ends every fault: proxies let traffic through, paused silos resume, stopped silos start again.</summary>
    public Task HealAllAsync(CancellationToken cancellationToken)
    {
        foreach (var network in networks)
        {
            network.Postgres.Heal();
            network.Peers.Heal();
        }

        foreach (var silo in silos)
        {
            if (silo.IsPaused)
            {
                silo.Resume();
            }

            if (!silo.IsRunning)
            {
                log($"healing: {silo.Name} was not running; starting it");
                silo.Start();
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Waits until the log head stays put while every silo answers at it, then returns the log and each silo's image.
    /// Broker sessions expire once the workload stops, so the controller keeps writing for a few seconds.
    /// </summary>
    public async Task<(MetadataLog Log, IReadOnlyDictionary<string, MetadataResponse> Images)> SettleAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var clients = silos.ToDictionary(s => s.Name, s => new MetaClient(new MetaClientOptions { BootstrapUrls = [s.PublicUrl], RequestTimeout = TimeSpan.FromSeconds(10), MaxAttempts = 3 }));
        try
        {
            while (true)
            {
                var before = await postgres.ReadLogAsync("chaos", cancellationToken);
                var images = new Dictionary<string, MetadataResponse>();
                try
                {
                    foreach (var (name, client) in clients)
                    {
                        images[name] = await client.GetMetadataAsync(null, before.Head, includeFenced: true, cancellationToken);
                    }
                }
                catch (MetaApiException exception) when (DateTime.UtcNow < deadline)
                {
                    // A silo its peers declared dead after the heal (a starved machine) stops serving and exits; the
                    // supervisor starts it again, as during the run, and settling goes on once every silo is back.
                    log($"settle: a silo did not answer ({exception.Message}); waiting for every silo to be ready again");
                    await WaitAllReadyAsync(TimeSpan.FromSeconds(90), cancellationToken, revive: true);
                    continue;
                }

                var after = await postgres.ReadLogAsync("chaos", cancellationToken);
                if (after.Head == before.Head && images.Values.All(i => i.MetadataOffset == before.Head))
                {
                    return (after, images);
                }

                if (DateTime.UtcNow > deadline)
                {
                    log($"settle: the log head still moves after {timeout} ({before.Head} -> {after.Head}); checking anyway");
                    return (after, images);
                }

                await Task.Delay(500, cancellationToken);
            }
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }
}
