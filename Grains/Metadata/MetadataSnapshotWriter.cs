using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// Writes snapshots of this silo's metadata image and deletes the log records they make unnecessary, on the one silo
/// that hosts the controller (by placement, in its own view of the membership).
/// </summary>
/// <remarks>
/// One writer is an economy, not what safety rests on: a snapshot is a pure function of the log's prefix up to its
/// offset (this silo's image, built only from durable records), so two silos that both believe they host the
/// controller for a moment write equal snapshots (the second write at an offset is a no-op) and delete the same prefix.
/// Nothing is fenced because nothing can be written wrongly.
/// </remarks>
public sealed partial class MetadataSnapshotWriter(
    MetadataImageService image,
    GrainLocator locator,
    IClusterMembership membership,
    IOptions<MetadataSnapshotOptions> options,
    ILogger<MetadataSnapshotWriter> logger,
    IMetadataSnapshotStore? store = null) : BackgroundService
{
    private readonly MetadataSnapshotOptions _options = options.Value;

    /// <summary>Whether this silo is the one that writes snapshots now: it is active and hosts the controller.</summary>
    public bool IsWriter => membership.IsActive && locator.Locate<IControllerGrain>(IControllerGrain.Key).IsLocal;

    /// <summary>Writes a snapshot of the image as it is now (unless it is empty) and deletes all but the newest
    /// <see cref="MetadataSnapshotOptions.SnapshotsToKeep"/>; returns the snapshot's offset, or <c>null</c> when there is
    /// no store or nothing to write.</summary>
    public async Task<long?> WriteSnapshotAsync(CancellationToken cancellationToken = default)
    {
        var (current, last) = image.CurrentWithLastRecord;
        if (store is null || current.Offset == 0 || !image.IsCaughtUp)
        {
            return null;
        }

        var started = TimeProvider.System.GetTimestamp();
        var data = await Task.Run(() => MetadataImageSnapshot.Serialize(current, last), cancellationToken).ConfigureAwait(false);
        var serialized = TimeProvider.System.GetElapsedTime(started);
        var written = await store.WriteAsync(current.Offset, MetadataImageSnapshot.FormatVersion, data, cancellationToken).ConfigureAwait(false);
        if (written)
        {
            LogWritten(logger, current.Offset, data.Length, serialized.TotalMilliseconds, TimeProvider.System.GetElapsedTime(started).TotalMilliseconds);
        }

        await store.DeleteOldSnapshotsAsync(_options.SnapshotsToKeep, cancellationToken).ConfigureAwait(false);
        return current.Offset;
    }

    /// <summary>Deletes the log records below the oldest kept snapshot and older than the retention window, in bounded
    /// batches; returns how many it deleted.</summary>
    public async Task<long> RunRetentionAsync(CancellationToken cancellationToken = default)
    {
        if (store is null)
        {
            return 0;
        }

        var deleted = await store.DeleteLogPrefixAsync(_options.RetentionWindow, _options.RetentionBatchSize, cancellationToken).ConfigureAwait(false);
        if (deleted > 0)
        {
            LogRetention(logger, deleted);
        }

        return deleted;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store is null || !_options.Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(_options.CheckInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                if (!IsWriter || !image.IsCaughtUp)
                {
                    continue;
                }

                var newest = (await store.ListAsync(stoppingToken).ConfigureAwait(false)).FirstOrDefault()?.Offset ?? 0;
                if (image.Current.Offset - newest >= _options.RecordsBetweenSnapshots)
                {
                    await WriteSnapshotAsync(stoppingToken).ConfigureAwait(false);
                }

                await RunRetentionAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
            {
                LogFailed(logger, exception);
            }
        }
    }

    [LoggerMessage(2400, LogLevel.Information, "Wrote the metadata image snapshot at offset {Offset} ({Length} bytes; serialized in {SerializeMs:0} ms, stored in {TotalMs:0} ms in all)")]
    private static partial void LogWritten(ILogger logger, long offset, int length, double serializeMs, double totalMs);

    [LoggerMessage(2401, LogLevel.Information, "Metadata log retention deleted {Count} records")]
    private static partial void LogRetention(ILogger logger, long count);

    [LoggerMessage(2402, LogLevel.Warning, "Writing a metadata image snapshot or running log retention failed; trying again at the next check")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
