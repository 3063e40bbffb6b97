using Microsoft.Extensions.Hosting;

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

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        runtime.IsStopping = true;
        foreach (var activation in runtime.Catalog.Activations)
        {
            activation.RequestDeactivation(DeactivationReason.ShuttingDown);
        }

        // Wait for the activations to finish their turns and OnDeactivateAsync, bounded by the host's stop timeout.
        try
        {
            await Task.WhenAll(runtime.Catalog.Activations.Select(a => a.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout wins; whatever was not deactivated is dropped with the process.
        }
    }

    public void Dispose() => _timer?.Dispose();
}
