using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Cluster.PostgreSql;
using OrleansMeta.Runtime.Persistence.PostgreSql;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests.Infrastructure;

/// <summary>
/// A minimal silo in this process: its own host and container, Kestrel on its silo endpoint only (HTTP/2 cleartext),
/// PostgreSQL membership and the membership endpoints.
/// </summary>
public sealed class TestSilo : IAsyncDisposable
{
    public const string Secret = "test-cluster-secret-0123456789";

    private readonly WebApplication _app;
    private bool _stopped;

    private TestSilo(WebApplication app, string name, int port)
    {
        _app = app;
        Name = name;
        Port = port;
        Membership = app.Services.GetRequiredService<PostgresClusterMembership>();
    }

    public string Name { get; }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    public PostgresClusterMembership Membership { get; }

    public SiloAddress Self => Membership.Self!;

    public IServiceProvider Services => _app.Services;

    public bool StopWasRequested => _app.Lifetime.ApplicationStopping.IsCancellationRequested;

    /// <summary>Fast timings so tests finish quickly; the detection test uses the real defaults instead.</summary>
    public static void Fast(MembershipOptions options)
    {
        options.ProbeInterval = TimeSpan.FromMilliseconds(200);
        options.ProbeTimeout = TimeSpan.FromMilliseconds(200);
        options.VoteExpiration = TimeSpan.FromSeconds(5);
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        options.HeartbeatStaleAfter = TimeSpan.FromSeconds(2);
        options.RefreshInterval = TimeSpan.FromMilliseconds(500);
        options.JoinTimeout = TimeSpan.FromSeconds(20);
    }

    public static async Task<TestSilo> StartAsync(
        string clusterId,
        ITestOutputHelper output,
        string name,
        Action<MembershipOptions>? configure = null,
        int? port = null,
        int? publicPort = null,
        TimeProvider? timeProvider = null,
        int? listenPort = null,
        string? outboundAddress = null)
    {
        var siloPort = port ?? FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new TestOutputLoggerProvider(output, name));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, listenPort ?? siloPort, listen => listen.Protocols = HttpProtocols.Http2);
            if (publicPort is { } p)
            {
                kestrel.Listen(IPAddress.Loopback, p, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
            }
        });
        if (timeProvider is not null)
        {
            builder.Services.AddSingleton(timeProvider);
        }

        builder.Services.AddPostgresGrainStorage(TestPostgres.ConnectionString, clusterId);
        builder.Services.AddPostgresClusterMembership();
        builder.Services.Configure<ClusterOptions>(options =>
        {
            options.SiloEndpoint = $"http://127.0.0.1:{siloPort}";
            options.SiloListenEndpoint = listenPort is { } l ? $"http://127.0.0.1:{l}" : null;
            options.SiloOutboundAddress = outboundAddress;
            options.ClusterSecret = Secret;
            options.SiloName = name;
        });
        builder.Services.Configure(configure ?? Fast);

        var app = builder.Build();
        app.UseSiloGuard();
        app.MapMembershipEndpoints();
        await app.StartAsync();
        return new TestSilo(app, name, siloPort);
    }

    /// <summary>
    /// Simulates a process crash: membership goes silent at once (no heartbeats, probes, votes, and no graceful
    /// leave), then the host stops, closing the silo port. Peers then see refused connections, as for a dead process
    /// on a live machine; a dead machine would show probe timeouts instead, which take at most ProbeTimeout longer.
    /// </summary>
    public async Task CrashAsync()
    {
        Membership.SimulateCrash();
        await StopAsync();
    }

    /// <summary>Graceful stop: the host's lifecycle runs BeginLeaveAsync (ShuttingDown) and LeaveAsync (Dead).</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>A free port in this project's range (<see cref="Ports"/>).</summary>
    public static int FreePort() => Ports.Free();
}
