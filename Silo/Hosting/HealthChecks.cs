using Microsoft.Extensions.Diagnostics.HealthChecks;

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
