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
public sealed partial class MetadataImageService(IMetadataLog log, ILogger<MetadataImageService> logger, IHostApplicationLifetime? lifetime = null)
    : BackgroundService, IJoinGate
{
    private const int PageSize = 10_000;

    private readonly Lock _lock = new();
    private volatile MetadataImage _current = MetadataImage.Empty;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _headAtStart = -1;
    private LoggedRecord? _lastApplied;

    /// <summary>
    /// Raised on the tailing loop after each batch of records is applied, with the batch (in offset order, following
    /// the previous batch without a gap) and the image that holds it, after <see cref="Current"/> moved to that image.
    /// Handlers must be quick and must not throw: the watch hub copies the records into its ring here.
    /// </summary>
    public event Action<IReadOnlyList<LoggedRecord>, MetadataImage>? Applied;

    /// <summary>The newest image this silo holds.</summary>
    public MetadataImage Current => _current;

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
    public async Task<MetadataImage> WaitForAsync(long offset, TimeSpan timeout, CancellationToken cancellationToken = default)
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

                // Each read starts one record early, at the last record applied, to check that the log still holds
                // it: a log that lost committed records (an asynchronous replica promoted after its primary died)
                // hands out their offsets again to new records, which a tailer would otherwise skip without a trace.
                var records = await log.ReadAsync(_lastApplied?.Offset - 1 ?? _current.Offset, PageSize + 1, stoppingToken).ConfigureAwait(false);
                if (_lastApplied is { } last)
                {
                    if (records.Count == 0 || !SameRecord(records[0], last))
                    {
                        LogDiverged(logger, last.Offset);
                        lifetime?.StopApplication();
                        return;
                    }

                    records = records.Count == 1 ? [] : records.Skip(1).ToList();
                }

                if (records.Count == 0)
                {
                    await log.WaitForAppendAsync(_current.Offset, TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                    continue;
                }

                var next = _current.Apply(records);
                _lastApplied = records[^1];
                TaskCompletionSource advanced;
                lock (_lock)
                {
                    _current = next;
                    advanced = _advanced;
                    _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                advanced.TrySetResult();
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

    private static bool SameRecord(LoggedRecord a, LoggedRecord b)
        => a.Offset == b.Offset && a.Type == b.Type && a.Key == b.Key && a.Payload.AsSpan().SequenceEqual(b.Payload);

    [LoggerMessage(2001, LogLevel.Critical,
        "The metadata log no longer holds record {Offset} as this silo applied it: the database lost committed records (for example an " +
        "asynchronous replica was promoted after its primary died). This silo stops rather than answer from metadata the database no longer " +
        "has; restart it to rebuild its image from the database as it is now.")]
    private static partial void LogDiverged(ILogger logger, long offset);

    [LoggerMessage(2000, LogLevel.Warning, "Reading the metadata log after offset {Offset} failed; retrying")]
    private static partial void LogTailFailed(ILogger logger, Exception exception, long offset);
}
