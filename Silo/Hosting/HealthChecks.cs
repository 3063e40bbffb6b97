using Microsoft.Extensions.Diagnostics.HealthChecks;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Healthy once the host has started every service (grain runtime, storage schema) and until it begins to stop.</summary>
internal sealed class SiloStartedHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(
            lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("The silo is stopping.")
            : lifetime.ApplicationStarted.IsCancellationRequested ? HealthCheckResult.Healthy("The silo has started.")
            : HealthCheckResult.Unhealthy("The silo is still starting."));
}

/// <summary>Healthy when the grain storage answers.</summary>
internal sealed class StorageHealthCheck(SiloStorage storage) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await storage.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy(storage.Description);
        }
        catch (Exception exception)
        {
            return HealthCheckResult.Unhealthy($"{storage.Description} is not reachable: {exception.Message}", exception);
        }
    }
}

/// <summary>Healthy while this silo is an active member of its cluster.</summary>
internal sealed class MembershipHealthCheck(IClusterMembership membership) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var view = membership.CurrentView;
        return Task.FromResult(membership.IsActive
            ? HealthCheckResult.Healthy($"Active as {membership.Self} in view {view.Version} with {view.ActiveSilos.Count} active silos.")
            : HealthCheckResult.Unhealthy(membership.Self is null
                ? "Not registered in the cluster yet."
                : $"{membership.Self} is not active in view {view.Version}."));
    }
}

/// <summary>Healthy once this silo's metadata image has caught up with the log as it stood at start.</summary>
internal sealed class MetadataHealthCheck(MetadataImageService image) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(image.IsCaughtUp
            ? HealthCheckResult.Healthy($"Metadata image at offset {image.Current.Offset}.")
            : HealthCheckResult.Unhealthy($"Metadata image is catching up (at offset {image.Current.Offset})."));
}
