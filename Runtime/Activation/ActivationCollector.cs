using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Activation;

/// <summary>
/// Deactivates activations that have had no call for longer than the collection age, checking every collection
/// quantum, and deactivates everything when the silo stops.
/// </summary>
internal sealed class ActivationCollector(GrainRuntime runtime) : IHostedService, IDisposable
{
    private ITimer? _timer;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var quantum = runtime.Options.CollectionQuantum;
        _timer = runtime.TimeProvider.CreateTimer(_ => CollectIdle(), null, quantum, quantum);
        return Task.CompletedTask;
    }

    /// <summary>Deactivates every idle activation older than the collection age; returns how many were asked to go.</summary>
    public int CollectIdle()
    {
        var cutoff = runtime.TimeProvider.GetUtcNow() - runtime.Options.CollectionAge;
        var collected = 0;
        foreach (var activation in runtime.Catalog.Activations)
        {
            if (activation.IsIdle && !activation.KeepAliveWhenIdle && activation.LastActive <= cutoff)
            {
                activation.RequestDeactivation(DeactivationReason.Idle);
                collected++;
            }
        }

        return collected;
    }

    public Task StopAsync(CancellationToken cancellationToken) => DeactivateAllAsync(cancellationToken);

    /// <summary>
    /// Stops taking calls and deactivates every activation, waiting for their turns and OnDeactivateAsync, bounded by
    /// <paramref name="cancellationToken"/> (the host's stop timeout). A silo leaving a cluster runs this as a leave
    /// drain, before it marks itself Dead; the host's stop runs it again, finding nothing left.
    /// </summary>
    public async Task<bool> DeactivateAllAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        runtime.IsStopping = true;
        foreach (var activation in runtime.Catalog.Activations)
        {
            activation.RequestDeactivation(DeactivationReason.ShuttingDown);
        }

        try
        {
            await Task.WhenAll(runtime.Catalog.Activations.Select(a => a.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout wins; whatever was not deactivated is dropped with the process.
            return false;
        }
    }

    public void Dispose() => _timer?.Dispose();

    /// <summary>
    /// The collector as a leave drain: a leaving silo marks itself Dead only once its grains have deactivated. Resolves
    /// the collector only when the silo leaves, because membership (which takes the drains) is itself a dependency of
    /// the grain runtime.
    /// </summary>
    internal sealed class LeaveDrain(IServiceProvider services) : ILeaveDrain
    {
        public string Description => "its grains have finished their turns and deactivated";

        public Task<bool> WaitAsync(CancellationToken cancellationToken)
            => services.GetRequiredService<ActivationCollector>().DeactivateAllAsync(cancellationToken);
    }
}
