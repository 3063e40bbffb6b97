using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Placement;

/// <summary>
/// When the view changes, deactivates the activations this silo no longer owns. They finish the turns they are
/// running; calls queued behind them are routed to the new owner, which activates the grain from persisted state.
/// </summary>
internal sealed partial class PlacementRebalancer(IClusterMembership membership, ActivationCatalog catalog, ILogger<PlacementRebalancer> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        membership.ViewChanged += OnViewChanged;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        membership.ViewChanged -= OnViewChanged;
        return Task.CompletedTask;
    }

    private void OnViewChanged(MembershipView view)
    {
        var self = membership.Self;
        var moved = 0;
        foreach (var activation in catalog.Activations)
        {
            if (self is null || !membership.IsActive || RendezvousPlacement.Owner(activation.GrainId, view.ActiveSilos) != self)
            {
                activation.RequestDeactivation(DeactivationReason.PlacementChanged);
                moved++;
            }
        }

        if (moved > 0)
        {
            Log.Moving(logger, moved, view.Version);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1300, LogLevel.Information, "View {Version}: handing over {Count} activations this silo no longer owns")]
        public static partial void Moving(ILogger logger, int count, long version);
    }
}
