using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Benchmarks;

/// <summary>Grain calls forwarded to another silo (HTTP/2, one hop) next to calls served locally, in the same run.</summary>
public static class RemoteCallScenario
{
    public static async Task<IReadOnlyList<Measurement>> RunAsync(string connectionString, TimeSpan warmup, TimeSpan duration)
    {
        var clusterId = $"bench-{Guid.NewGuid():N}"[..20];
        var secret = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        await using var a = await StartSiloAsync("a", connectionString, clusterId, secret);
        await using var b = await StartSiloAsync("b", connectionString, clusterId, secret);
        var membershipA = a.Services.GetRequiredService<IClusterMembership>();
        var membershipB = b.Services.GetRequiredService<IClusterMembership>();
        while (membershipA.CurrentView.ActiveSilos.Count < 2 || membershipB.CurrentView.Version != membershipA.CurrentView.Version)
        {
            await Task.Delay(50);
            await membershipA.RefreshAsync();
        }

        var active = membershipA.CurrentView.ActiveSilos;
        var keys = Enumerable.Range(0, 2000).Select(i => $"echo-{i}").ToList();
        var local = keys.Where(k => RendezvousPlacement.Owner(new GrainId("echo", k), active) == membershipA.Self).ToArray();
        var remote = keys.Where(k => RendezvousPlacement.Owner(new GrainId("echo", k), active) == membershipB.Self).ToArray();
        var factory = a.Services.GetRequiredService<IGrainFactory>();
        var localGrains = local.Select(factory.GetGrain<IEchoGrain>).ToArray();
        var remoteGrains = remote.Select(factory.GetGrain<IEchoGrain>).ToArray();

        return
        [
            await LoadRunner.RunAsync($"cluster: local call (owner is this silo)", 64, warmup, duration,
                (worker, n) => localGrains[(int)((worker * 7919 + n) % localGrains.Length)].EchoAsync(worker)),
            await LoadRunner.RunAsync($"cluster: remote call (one HTTP/2 hop)", 64, warmup, duration,
                (worker, n) => remoteGrains[(int)((worker * 7919 + n) % remoteGrains.Length)].EchoAsync(worker)),
            await LoadRunner.RunAsync($"cluster: remote call, 1 caller", 1, warmup, duration,
                (worker, n) => remoteGrains[(int)(n % remoteGrains.Length)].EchoAsync(worker)),
        ];
    }

    private static async Task<WebApplication> StartSiloAsync(string name, string connectionString, string clusterId, string secret)
    {
        var builder = WebApplication.CreateBuilder([
            $"--urls=http://127.0.0.1:{FreePort()}",
            $"--ConnectionStrings:Postgres={connectionString}",
            $"--Meta:ClusterId={clusterId}",
            $"--Meta:Cluster:ClusterSecret={secret}",
            $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{FreePort()}",
            $"--Meta:Cluster:SiloName={name}",
        ]);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.AddMetaSilo(runtime => runtime.AddGrain<IEchoGrain, EchoGrain>());
        var app = builder.Build();
        app.MapMetaSilo();
        await app.StartAsync();
        return app;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
