using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster.PostgreSql;
using OrleansMeta.Silo.Hosting;
using OrleansMeta.TestGrains;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>A silo in this process with its own host, DI container and ports.</summary>
public sealed class InProcessSilo : SiloHandle
{
    private readonly WebApplication _app;
    private bool _running = true;

    private InProcessSilo(string name, int publicPort, int siloPort, WebApplication app) : base(name, publicPort, siloPort) => _app = app;

    public IServiceProvider Services => _app.Services;

    public IGrainFactory Grains => _app.Services.GetRequiredService<IGrainFactory>();

    public override bool IsRunning => _running;

    /// <param name="configureServices">Runs after the silo's own registrations, so a test can replace one (a slow
    /// metadata log, a faulty storage).</param>
    public static async Task<InProcessSilo> StartAsync(
        string name, IEnumerable<string> arguments, int? publicPortOrNull = null, int? siloPortOrNull = null, Action<IServiceCollection>? configureServices = null)
    {
        var publicPort = publicPortOrNull ?? Ports.Free();
        var siloPort = siloPortOrNull ?? Ports.Free();
        var builder = WebApplication.CreateBuilder([
            .. arguments,
            $"--urls=http://127.0.0.1:{publicPort}",
            $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{siloPort}",
            $"--Meta:Cluster:SiloName={name}",
        ]);
        builder.AddMetaSilo(runtime => runtime.AddTestGrains());
        configureServices?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapMetaSilo();
        await app.StartAsync();
        return new InProcessSilo(name, publicPort, siloPort, app);
    }

    /// <summary>
    /// A crash as far as the cluster can tell: membership goes silent at once (no heartbeats, no votes, no graceful
    /// leave) and the silo stops answering on its ports, so peers must detect it by probing. Inside this process the
    /// host still stops normally; crash tests that need a real kill -9 use <see cref="ProcessSilo"/>.
    /// </summary>
    public async Task KillAsync()
    {
        if (_running)
        {
            _app.Services.GetRequiredService<PostgresClusterMembership>().SimulateCrash();
            _running = false;
            await _app.StopAsync();
        }
    }

    public override async Task StopAsync()
    {
        if (_running)
        {
            _running = false;
            await _app.StopAsync();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        await base.DisposeAsync();
    }
}
