using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Says on the console, once the silo serves, where it listens and what storage it uses.</summary>
internal sealed partial class SiloStartupAnnouncer(
    IHostApplicationLifetime lifetime,
    IServer server,
    SiloStorage storage,
    IOptions<SiloOptions> options,
    ILogger<SiloStartupAnnouncer> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            Announce(logger, options.Value.ClusterId, string.Join(", ", addresses), storage.Description);
        });
        lifetime.ApplicationStopping.Register(() => Stopping(logger, options.Value.ClusterId));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(1, LogLevel.Information, "Orleans.Meta silo of cluster '{ClusterId}' is listening on {Addresses} with {Storage}. Health: /health/ready")]
    private static partial void Announce(ILogger logger, string clusterId, string addresses, string storage);

    [LoggerMessage(2, LogLevel.Information, "Orleans.Meta silo of cluster '{ClusterId}' is stopping")]
    private static partial void Stopping(ILogger logger, string clusterId);
}
