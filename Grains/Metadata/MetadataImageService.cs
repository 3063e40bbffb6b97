using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// This silo's metadata image: tails the metadata log and applies every record in order, so that metadata reads are
/// answered from memory on any silo. Reads that must see a write wait until the image has reached its offset.
/// </summary>
/// <remarks>
/// With a snapshot store, a starting silo loads the newest snapshot it can read and verify (falling back to older ones,
/// then to a full replay) and replays only the log after it; and a silo whose next records were deleted by retention
/// (it fell behind the log's retained start) loads the newest snapshot instead of replaying. docs/metadata-log.md.
/// </remarks>
public sealed partial class MetadataImageService(
    IMetadataLog log,
    ILogger<MetadataImageService> logger,
    IHostApplicationLifetime? lifetime = null,
    IMetadataSnapshotStore? snapshots = null)
    : BackgroundService, IJoinGate
{
    private const int PageSize = 10_000;

    private readonly Lock _lock = new();
    private volatile MetadataImage _current = MetadataImage.Empty;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _headAtStart = -1;
    private LoggedRecord? _lastApplied;
    private (MetadataImage Image, LoggedRecord? Last) _published = (MetadataImage.Empty, null);
    private bool _snapshotLoadTried;

    /// <summary>
    /// Raised on the tailing loop after each batch of records is applied, with the batch (in offset order) and the image
    /// that holds it, after <see cref="Current"/> moved to that image. A batch follows the previous one without a gap,
    /// except after the image was replaced by a snapshot (a silo behind the log's retained start): then it follows the
    /// snapshot, and handlers must not assume the offsets in between.
    /// Handlers must be quick and must not throw: the watch hub copies the records into its ring here.
    /// </summary>
    public event Action<IReadOnlyList<LoggedRecord>, MetadataImage>? Applied;

    /// <summary>The newest image this silo holds.</summary>
    public MetadataImage Current => _current;

    /// <summary>The newest image with the last record it applied (<c>null</c> for the empty image), read together: what
    /// a snapshot of it holds.</summary>
    public (MetadataImage Image, LoggedRecord? LastRecord) CurrentWithLastRecord
    {
        get
        {
            lock (_lock)
            {
                return _published;
            }
        }
    }

    /// <summary>The offset of the snapshot this silo's image started from or last jumped to, or <c>null</c> when it was
    /// built by replaying the log from its start.</summary>
    public long? SnapshotOffset { get; private set; }

    /// <summary>True once the image has caught up with the log as it was when the silo started.</summary>
    public bool IsCaughtUp => _headAtStart >= 0 && _current.Offset >= _headAtStart;

    /// <inheritdoc />
    public string Description => "its metadata image has caught up with the log head it read at start";

    /// <summary>
    /// Completes once the image holds every record that was committed when this silo started: until then the silo
    /// must not own grains, whose decisions (elections, fencing, assignments) would be taken on old metadata.
    /// </summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        while (!IsCaughtUp)
        {
            Task advanced;
            lock (_lock)
            {
                advanced = _advanced.Task;
            }

            // The head at start is read by the tailer's first round; poll briefly until it has been.
            await Task.WhenAny(advanced, Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The image once it holds <paramref name="offset"/>; waits at most <paramref name="timeout"/>.</summary>
    /// <exception cref="MetaException">OFFSET_NOT_AVAILABLE (retryable) when the offset is not reached in time.</exception>
    public Task<MetadataImage> WaitForAsync(long offset, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // The common case (every partition command of a failover) needs no deadline timer: the image is already there.
        var current = _current;
        return current.Offset >= offset ? Task.FromResult(current) : WaitForLaterAsync(offset, timeout, cancellationToken);
    }

    private async Task<MetadataImage> WaitForLaterAsync(long offset, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            Task advanced;
            lock (_lock)
            {
                if (_current.Offset >= offset)
                {
                    return _current;
                }

                advanced = _advanced.Task;
            }

            try
            {
                await advanced.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new MetaException(ErrorCodes.OffsetNotAvailable,
                    $"This silo's metadata has reached offset {_current.Offset}, not {offset}, within {timeout.TotalSeconds:0.#} s; retry (or ask another silo).",
                    504, retryable: true);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_headAtStart < 0)
                {
                    _headAtStart = await log.GetHeadAsync(stoppingToken).ConfigureAwait(false);
                }

                if (!_snapshotLoadTried)
                {
                    // Loaded after the head is read: the snapshot may be newer than that head, never a reason to
                    // replay less than the head.
                    await LoadSnapshotAsync(neededOffset: 0, stoppingToken).ConfigureAwait(false);
                    _snapshotLoadTried = true; // Only once it ran: a failed read of the snapshots is retried.
                }

                // Each read starts one record early, at the last record applied, to check that the log still holds
                // it: a log that lost committed records (an asynchronous replica promoted after its primary died)
                // hands out their offsets again to new records, which a tailer would otherwise skip without a trace.
                var records = await log.ReadAsync(_lastApplied?.Offset - 1 ?? _current.Offset, PageSize + 1, stoppingToken).ConfigureAwait(false);
                var lastSeen = false;
                if (_lastApplied is { } last && records.Count > 0 && records[0].Offset <= last.Offset)
                {
                    if (!SameRecord(records[0], last))
                    {
                        Diverged(last.Offset);
                        return;
                    }

                    lastSeen = true;
                    records = records.Count == 1 ? [] : records.Skip(1).ToList();
                }

                if (records.Count == 0)
                {
                    // Nothing after this image, and the log no longer holds (or never held) the last record applied:
                    // either the log lost records, or retention deleted them, perhaps up to the head.
                    if (!lastSeen && await NothingToReadAsync(stoppingToken).ConfigureAwait(false) is { } head)
                    {
                        if (_lastApplied is { } applied && head < applied.Offset)
                        {
                            // The log ends below a record this silo applied: it lost records. (Retention deletes only
                            // records below a snapshot, and never moves the head back.)
                            Diverged(applied.Offset);
                            return;
                        }

                        if (head > _current.Offset)
                        {
                            LogBehindRetainedStart(logger, _current.Offset, head + 1);
                            if (!await LoadSnapshotAsync(neededOffset: head, stoppingToken).ConfigureAwait(false))
                            {
                                throw new InvalidOperationException(
                                    $"The metadata log holds no record after this silo's image ({_current.Offset}) up to its head ({head}), " +
                                    "and no readable snapshot reaches that far.");
                            }

                            continue;
                        }
                    }

                    await log.WaitForAppendAsync(_current.Offset, TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                    continue;
                }

                if (records[0].Offset > _current.Offset + 1)
                {
                    // Retention deleted records this silo has not applied (it started from nothing on a truncated log,
                    // or fell far behind): a snapshot at or after them exists, since retention never deletes past the
                    // oldest stored one.
                    LogBehindRetainedStart(logger, _current.Offset, records[0].Offset);
                    if (!await LoadSnapshotAsync(neededOffset: records[0].Offset - 1, stoppingToken).ConfigureAwait(false))
                    {
                        throw new InvalidOperationException(
                            $"The metadata log's retained records start at offset {records[0].Offset}, after this silo's image ({_current.Offset}), " +
                            "and no readable snapshot reaches that far.");
                    }

                    continue;
                }

                var next = _current.Apply(records);
                Publish(next, records[^1]);
                Applied?.Invoke(records, next);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                LogTailFailed(logger, exception, _current.Offset);
                await Task.Delay(TimeSpan.FromMilliseconds(500), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private void Publish(MetadataImage next, LoggedRecord? last)
    {
        _lastApplied = last;
        TaskCompletionSource advanced;
        lock (_lock)
        {
            _current = next;
            _published = (next, last);
            advanced = _advanced;
            _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        advanced.TrySetResult();
    }

    /// <summary>The log head, when a read after this image made after reading it finds nothing (so every record up to
    /// it is gone or was never there); <c>null</c> when there is something to read after all.</summary>
    private async Task<long?> NothingToReadAsync(CancellationToken cancellationToken)
    {
        var head = await log.GetHeadAsync(cancellationToken).ConfigureAwait(false);
        return (await log.ReadAsync(_current.Offset, 1, cancellationToken).ConfigureAwait(false)).Count == 0 ? head : null;
    }

    private void Diverged(long offset)
    {
        LogDiverged(logger, offset);
        lifetime?.StopApplication();
    }

    /// <summary>
    /// Replaces the image with the newest stored snapshot that is newer than it, reaches <paramref name="neededOffset"/>,
    /// is of a format this version reads and matches its checksum; older ones are tried when a newer one fails. Returns
    /// whether the image now reaches <paramref name="neededOffset"/>.
    /// </summary>
    private async Task<bool> LoadSnapshotAsync(long neededOffset, CancellationToken cancellationToken)
    {
        if (snapshots is null)
        {
            return _current.Offset >= neededOffset;
        }

        foreach (var info in await snapshots.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            if (info.Offset <= _current.Offset || info.Offset < neededOffset)
            {
                break; // Newest first: the rest are no better.
            }

            if (!MetadataImageSnapshot.CanRead(info.FormatVersion))
            {
                LogSnapshotSkipped(logger, info.Offset, $"format {info.FormatVersion} is not known to this version");
                continue;
            }

            RestoredImage restored;
            var started = TimeProvider.System.GetTimestamp();
            try
            {
                var data = await snapshots.ReadAsync(info.Offset, cancellationToken).ConfigureAwait(false);
                if (data is null)
                {
                    continue; // Deleted since it was listed.
                }

                restored = await Task.Run(() => MetadataImageSnapshot.Deserialize(data), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is InvalidDataException or NotSupportedException)
            {
                LogSnapshotSkipped(logger, info.Offset, exception.Message);
                continue;
            }

            if (restored.Image.Offset != info.Offset)
            {
                LogSnapshotSkipped(logger, info.Offset, $"it holds the image at offset {restored.Image.Offset}");
                continue;
            }

            SnapshotOffset = info.Offset;
            Publish(restored.Image, restored.LastRecord);
            LogSnapshotLoaded(logger, info.Offset, info.Length, TimeProvider.System.GetElapsedTime(started).TotalMilliseconds);
            return true;
        }

        return _current.Offset >= neededOffset;
    }

    private static bool SameRecord(LoggedRecord a, LoggedRecord b)
        => a.Offset == b.Offset && a.Type == b.Type && a.Key == b.Key && a.Payload.AsSpan().SequenceEqual(b.Payload);

    [LoggerMessage(2001, LogLevel.Critical,
        "The metadata log no longer holds record {Offset} as this silo applied it: the database lost committed records (for example an " +
        "asynchronous replica was promoted after its primary died). This silo stops rather than answer from metadata the database no longer " +
        "has; restart it to rebuild its image from the database as it is now.")]
    private static partial void LogDiverged(ILogger logger, long offset);

    [LoggerMessage(2002, LogLevel.Information, "Loaded the metadata image snapshot at offset {Offset} ({Length} bytes) in {Milliseconds:0} ms")]
    private static partial void LogSnapshotLoaded(ILogger logger, long offset, long length, double milliseconds);

    [LoggerMessage(2003, LogLevel.Warning, "Skipped the metadata image snapshot at offset {Offset}: {Reason}; trying an older one or the log")]
    private static partial void LogSnapshotSkipped(ILogger logger, long offset, string reason);

    [LoggerMessage(2004, LogLevel.Warning,
        "This silo's metadata image is at offset {Offset} but the log's retained records start at {RetainedStart}: loading the newest snapshot")]
    private static partial void LogBehindRetainedStart(ILogger logger, long offset, long retainedStart);

    [LoggerMessage(2000, LogLevel.Warning, "Reading the metadata log after offset {Offset} failed; retrying")]
    private static partial void LogTailFailed(ILogger logger, Exception exception, long offset);
}
