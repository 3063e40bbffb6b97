using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// Activates every consumer group with committed offsets that this silo owns, when the silo starts and whenever the
/// membership view changes (as Kafka's group coordinator loads the groups of the offsets partitions it leads). Group
/// grains holding offsets stay active, so listing every group with its lag is answered from memory and offset expiry
/// runs for every group, including groups nobody calls. It also drops deleted topics' log offsets.
/// </summary>
internal sealed partial class GroupLoader(
    IClusterMembership membership,
    IOffsetStore store,
    IGrainFactory grains,
    GroupDirectory directory,
    LogOffsetsTable logOffsets,
    MetadataImageService image,
    ILogger<GroupLoader> logger) : BackgroundService
{
    private const int PageSize = 1000;
    private const int Parallelism = 16;

    // A safety net besides view changes: a silo that missed a change (or whose load failed) catches up.
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _viewChanged = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        membership.ViewChanged += OnViewChanged;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (membership.IsActive && membership.Self is { } self)
                {
                    try
                    {
                        await LoadOwnedAsync(self, stoppingToken).ConfigureAwait(false);

                        // Deleted topics' log offsets go too (a topic id never comes back). A topic this silo's image
                        // does not show yet loses its values until the next report.
                        var topics = image.Current.TopicNames;
                        logOffsets.Retain(topics.ContainsKey);
                    }
                    catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
                    {
                        LogLoadFailed(logger, exception.Message);
                    }
                }

                // Joining silos are not active yet: look again soon rather than waiting for the next change.
                var wait = membership.IsActive ? Interval : TimeSpan.FromSeconds(1);
                await _viewChanged.WaitAsync(wait, stoppingToken).ConfigureAwait(false);

                // Changes that came in a burst need one load, not one each.
                while (_viewChanged.Wait(0, CancellationToken.None))
                {
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            membership.ViewChanged -= OnViewChanged;
        }
    }

    private void OnViewChanged(MembershipView view) => _viewChanged.Release();

    private async Task LoadOwnedAsync(SiloAddress self, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var loaded = 0;
        string? after = null;
        while (true)
        {
            var page = await store.ListGroupsAsync(after, PageSize, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }

            after = page[^1];
            var silos = membership.CurrentView.ActiveSilos;
            var missing = page.Where(id => !directory.Contains(id)
                && RendezvousPlacement.Owner(grains.GetGrain<IConsumerGroupGrain>(id).GetGrainId(), silos) == self).ToList();
            await Parallel.ForEachAsync(
                missing,
                new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken },
                async (id, _) =>
                {
                    // Any call activates the grain, which loads its offsets and stays active while it holds them.
                    await grains.GetGrain<IConsumerGroupGrain>(id).ListingAsync().ConfigureAwait(false);
                    Interlocked.Increment(ref loaded);
                }).ConfigureAwait(false);
            if (page.Count < PageSize)
            {
                break;
            }
        }

        if (loaded > 0)
        {
            LogLoaded(logger, loaded, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    public override void Dispose()
    {
        _viewChanged.Dispose();
        base.Dispose();
    }

    [LoggerMessage(2510, LogLevel.Information, "Loaded {Count} consumer groups this silo owns in {Milliseconds:0} ms")]
    private static partial void LogLoaded(ILogger logger, int count, double milliseconds);

    [LoggerMessage(2511, LogLevel.Warning, "Loading the consumer groups this silo owns failed; retrying at the next view change or within a minute: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string reason);
}
