using System.Buffers;
using OrleansMeta.Contracts;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Watch;

/// <summary>
/// One watcher's stream. Records come from the silo's ring while the watcher keeps up, from the log in bounded pages
/// while it catches up from an older offset, and as a snapshot when the log no longer holds the offset it asks for.
/// Nothing is queued per watcher: each event is written straight to the connection, whose buffer is bounded, so a
/// slow reader holds back only its own loop; one that falls too far behind the live tail is cut off.
/// </summary>
public sealed partial class WatchSession(
    HttpResponse response,
    WatchHub hub,
    IMetadataLog log,
    WatchSelection selection,
    WatchOptions options,
    ILogger logger)
{
    /// <summary>Bytes gathered before a write to the connection.</summary>
    private const int WriteChunk = 32 * 1024;

    private const int RingBatch = 512;

    private readonly ArrayBufferWriter<byte> _pending = new(WriteChunk * 2);
    private long _lastId = -1;
    private DateTime _lastWrite = DateTime.UtcNow;

    /// <summary>Streams until the client goes away, the silo stops, or the watcher is cut off.</summary>
    /// <param name="from">The first offset to send; null to start with a snapshot.</param>
    public async Task RunAsync(long? from, CancellationToken cancellationToken)
    {
        long next;
        if (from is { } start)
        {
            next = start;
            _lastId = start - 1;
        }
        else
        {
            next = await SnapshotAsync(cancellationToken) + 1;
        }

        var batch = new List<WatchRecord>(RingBatch);
        var live = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            batch.Clear();
            if (!hub.TryRead(next, RingBatch, batch))
            {
                // Older than the ring. A watcher that was following the tail fell behind it: cut off. One that asked
                // for an older offset catches up from the log.
                if (live)
                {
                    await CutOffAsync(next, "the watcher fell behind the records this silo keeps in memory", cancellationToken);
                    return;
                }

                next = await CatchUpAsync(next, cancellationToken);
                continue;
            }

            if (batch.Count == 0)
            {
                await FlushAsync(cancellationToken);
                await IdleAsync(next - 1, cancellationToken);
                continue;
            }

            live = true;
            foreach (var record in batch)
            {
                if (selection.Matches(record))
                {
                    await AddAsync(record.Frame, record.Record.Offset, cancellationToken);
                }
            }

            next = batch[^1].Record.Offset + 1;
            await FlushAsync(cancellationToken);

            var behind = hub.State.Image.Offset - (next - 1);
            if (behind > options.MaxLagRecords)
            {
                await CutOffAsync(next, $"the watcher fell {behind} records behind this silo (at most {options.MaxLagRecords} are allowed)", cancellationToken);
                return;
            }
        }
    }

    /// <summary>Sends records from <paramref name="next"/> on read from the log, one page; answers with a snapshot when
    /// the log no longer holds <paramref name="next"/>.</summary>
    /// <returns>The next offset to send.</returns>
    private async Task<long> CatchUpAsync(long next, CancellationToken cancellationToken)
    {
        var page = await log.ReadAsync(next - 1, options.LogPageSize, cancellationToken);
        if ((page.Count == 0 && next <= hub.State.Image.Offset) || (page.Count > 0 && page[0].Offset > next))
        {
            // Offsets are gap-free: a first record past the one asked for (or none, below what this silo has applied)
            // means the records from `next` on were removed.
            LogSnapshotInstead(logger, next);
            return await SnapshotAsync(cancellationToken) + 1;
        }

        foreach (var logged in page)
        {
            var record = new WatchRecord(logged);
            if (selection.Matches(record))
            {
                await AddAsync(record.Frame, logged.Offset, cancellationToken);
            }
        }

        await FlushAsync(cancellationToken);
        if (page.Count == 0)
        {
            await IdleAsync(next - 1, cancellationToken);
            return next;
        }

        return page[^1].Offset + 1;
    }

    /// <summary>Sends the state of this silo's image for the filter, between <c>snapshot-start</c> and
    /// <c>snapshot-end</c> (whose id is the image's offset).</summary>
    /// <returns>The offset the snapshot is at.</returns>
    private async Task<long> SnapshotAsync(CancellationToken cancellationToken)
    {
        // The hub's image is the one its ring ends at, so the ring's next record is the snapshot's next record.
        var image = hub.State.Image;
        await AddAsync(WatchFrames.Marker(WatchEventKinds.SnapshotStart, image.Offset, withId: false), null, cancellationToken);
        foreach (var (type, key, record) in selection.Snapshot(image))
        {
            await AddAsync(WatchFrames.SnapshotItem(image.Offset, type, key, record), null, cancellationToken);
        }

        await AddAsync(WatchFrames.Marker(WatchEventKinds.SnapshotEnd, image.Offset, withId: true), image.Offset, cancellationToken);
        await FlushAsync(cancellationToken);
        return image.Offset;
    }

    /// <summary>Waits for records after <paramref name="seen"/>, sending a keep-alive when the stream was quiet for the
    /// interval (a <c>progress</c> event, when the filter skipped records since the last id sent).</summary>
    private async Task IdleAsync(long seen, CancellationToken cancellationToken)
    {
        var due = _lastWrite + options.KeepAliveInterval - DateTime.UtcNow;
        if (due > TimeSpan.Zero)
        {
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timer.CancelAfter(due);
            try
            {
                await hub.WaitBeyondAsync(seen, timer.Token);
                return;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Quiet for the interval: fall through to the keep-alive.
            }
        }

        if (seen > _lastId)
        {
            await AddAsync(WatchFrames.Marker(WatchEventKinds.Progress, seen, withId: true), seen, cancellationToken);
        }
        else
        {
            await AddAsync(WatchFrames.KeepAlive, null, cancellationToken);
        }

        await FlushAsync(cancellationToken);
    }

    private async Task CutOffAsync(long resumeFrom, string reason, CancellationToken cancellationToken)
    {
        LogCutOff(logger, resumeFrom, reason);
        await AddAsync(WatchFrames.CutOff(new WatchCutOff(resumeFrom, $"Cut off: {reason}. Reconnect from offset {resumeFrom}.")), null, cancellationToken);
        await FlushAsync(cancellationToken);
    }

    private async ValueTask AddAsync(byte[] frame, long? id, CancellationToken cancellationToken)
    {
        _pending.Write(frame);
        if (id is { } offset)
        {
            _lastId = offset;
        }

        if (_pending.WrittenCount >= WriteChunk)
        {
            await FlushAsync(cancellationToken);
        }
    }

    /// <summary>Writes what is gathered. A watcher that does not take it within the write timeout is dropped: its
    /// last event id says where to resume.</summary>
    private async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_pending.WrittenCount == 0)
        {
            return;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.WriteTimeout);
        try
        {
            await response.Body.WriteAsync(_pending.WrittenMemory, deadline.Token);
            await response.Body.FlushAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogWriteTimedOut(logger, _lastId, options.WriteTimeout);
            response.HttpContext.Abort();
            throw new OperationCanceledException("The watcher did not read within the write timeout.", cancellationToken);
        }

        _pending.ResetWrittenCount();
        _lastWrite = DateTime.UtcNow;
    }

    [LoggerMessage(3100, LogLevel.Information, "A watcher asked for offset {Offset}, which the metadata log no longer holds; answering with a snapshot")]
    private static partial void LogSnapshotInstead(ILogger logger, long offset);

    [LoggerMessage(3101, LogLevel.Information, "Cut off a watcher at offset {Offset}: {Reason}")]
    private static partial void LogCutOff(ILogger logger, long offset, string reason);

    [LoggerMessage(3102, LogLevel.Information, "Dropped a watcher that did not read within {Timeout} (last event id {LastId})")]
    private static partial void LogWriteTimedOut(ILogger logger, long lastId, TimeSpan timeout);
}
