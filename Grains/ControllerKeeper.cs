using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;

namespace OrleansMeta.Grains;

/// <summary>
/// Keeps the controller activated: every silo asks for its status every few seconds, so after the silo that hosted
/// it dies, the controller is back on its new owner within one interval (with a new epoch), even when no broker
/// happens to call it.
/// </summary>
internal sealed partial class ControllerKeeper(IGrainFactory grains, TimeProvider time, ILogger<ControllerKeeper> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                await grains.GetGrain<IControllerGrain>(IControllerGrain.Key).GetStatusAsync().WaitAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
            {
                LogUnreachable(logger, exception.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    [LoggerMessage(2300, LogLevel.Debug, "The controller did not answer its keep-alive: {Reason}")]
    private static partial void LogUnreachable(ILogger logger, string reason);
}
