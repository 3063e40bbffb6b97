using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// Grain storage in PostgreSQL (table <c>grain_state</c>, see <see cref="SchemaMigrator"/>). Writes and clears from many
/// grains are coalesced into batches, each one statement in one transaction; every row still checks its own version
/// and every caller gets its own result. Reads are coalesced the same way (when many activations start at once, as in
/// a failover), each batch one select.
/// </summary>
/// <remarks>
/// <para>Batching adds no latency when the storage is idle: a write is sent at once if fewer than
/// <see cref="PostgresStorageOptions.MaxConcurrentBatches"/> batches are in flight. Otherwise it waits and leaves in the
/// next batch together with everything that arrived meanwhile (up to <see cref="PostgresStorageOptions.MaxBatchSize"/>).
/// A row is never in two batches in flight from this storage at once: a second write to it waits for the first to
/// finish, so concurrent batches touch disjoint rows and cannot deadlock each other.</para>
/// <para>Cancellation: a write cancelled before it leaves in a batch is never sent. Once sent it cannot be recalled:
/// the caller sees <see cref="OperationCanceledException"/> but the write may still commit, exactly as when a
/// response is lost. The caller's next write then fails with <see cref="InconsistentStateException"/> and the
/// activation reloads, so nothing is silently lost or applied twice. Other writes in the batch are unaffected.</para>
/// <para>If the batch as a whole fails (connection lost, server error), every caller in it gets that exception; the
/// outcome of a batch whose commit acknowledgement was lost is unknown, as for any single database write.</para>
/// <para>Reads follow the same rule with their own limits (<see cref="PostgresStorageOptions.MaxConcurrentReadBatches"/>,
/// <see cref="PostgresStorageOptions.MaxReadBatchSize"/>) and their own loop and connections, so reads never queue
/// behind writes; a failed read batch fails every read in it.</para>
/// </remarks>
public sealed partial class PostgresGrainStorage : IGrainStorage, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresStorageOptions _options;
    private readonly ILogger _logger;
    private readonly IWriterFence? _writerFence;
    private readonly Channel<object> _writeInbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private readonly Channel<object> _readInbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _reader;
    private readonly Task _keeper;
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _instanceId = Guid.NewGuid().ToString("N");
    private int _disposed;

    /// <summary>Creates the storage and starts its batch writer and reader. It does not own <paramref name="dataSource"/>.</summary>
    /// <exception cref="OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    /// <param name="dataSource">The database.</param>
    /// <param name="options">Batching limits and the cluster id.</param>
    /// <param name="logger">Optional logger.</param>
    /// <param name="writer">The silo whose membership row fences every write (see <see cref="IWriterFence"/>); none outside a cluster.</param>
    public PostgresGrainStorage(
        NpgsqlDataSource dataSource, IOptions<PostgresStorageOptions> options, ILogger<PostgresGrainStorage>? logger = null, IWriterFence? writer = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        var validation = new PostgresStorageOptionsValidator().Validate(Options.DefaultName, options.Value);
        if (validation.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(PostgresStorageOptions), validation.Failures);
        }

        _dataSource = dataSource;
        _writerFence = writer;
        _options = options.Value;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _writer = Task.Run(RunWriterAsync);
        _reader = Task.Run(RunReaderAsync);
        _keeper = Task.Run(KeepLogDurableAsync);
    }

    /// <summary>Running totals of batches, writes, conflicts and reads.</summary>
    public PostgresStorageStatistics Statistics { get; } = new();

    /// <inheritdoc />
    /// <remarks>
    /// The read is answered by a statement sent after it was issued, never from a cache, so it sees every write
    /// acknowledged before then. Cancelled before its batch is sent, it is never sent; cancelled later, the caller
    /// stops waiting and the rest of the batch is unaffected.
    /// </remarks>
    public Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<StoredGrainState?>(cancellationToken);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var pending = new PendingRead(new RowKey(grainId, stateName), cancellationToken);
        if (!_readInbox.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(PostgresGrainStorage));
        }

        return pending.Task;
    }

    /// <inheritdoc />
    /// <remarks>
    /// <para>The payload and the records' payloads are copied, so the caller may reuse the arrays at once.</para>
    /// <para>Fence rows are locked <c>FOR SHARE</c> while the write commits, so a write that passed its fences commits
    /// before any change to a fence row, and its records get lower offsets than that change's. A fence on a row that
    /// does not exist (version 0) is checked but cannot be locked: fence on rows that exist.</para>
    /// </remarks>
    public Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(write);
        ArgumentOutOfRangeException.ThrowIfNegative(write.ExpectedVersion);
        var records = new LogRecord[write.Records.Count];
        for (var i = 0; i < records.Length; i++)
        {
            var record = write.Records[i] ?? throw new ArgumentException("A log record is null.", nameof(write));
            records[i] = record with { Payload = record.Payload.ToArray() };
        }

        var fences = new PendingFence[write.Fences.Count];
        for (var i = 0; i < fences.Length; i++)
        {
            var fence = write.Fences[i] ?? throw new ArgumentException("A fence is null.", nameof(write));
            fences[i] = new PendingFence(new RowKey(fence.GrainId, fence.StateName), fence);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<WriteResult>(cancellationToken);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var pending = new PendingWrite(new RowKey(grainId, stateName), write.Payload?.ToArray(), write.ExpectedVersion, fences, records, cancellationToken);
        if (!_writeInbox.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(PostgresGrainStorage));
        }

        return pending.Task;
    }

    /// <summary>Stops accepting reads and writes, finishes the ones already accepted and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _writeInbox.Writer.TryWrite(StopSignal.Instance);
            _readInbox.Writer.TryWrite(StopSignal.Instance);
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_writer, _reader, _keeper).ConfigureAwait(false);
    }

    /// <summary>
    /// Once a second, makes durable and readable any records a writer committed but did not get to make durable
    /// (its silo died between the two transactions, or its durability transaction failed): without this they would
    /// stay unread until the next append anywhere in the cluster. Costs one read while the frontier is at the head.
    /// Every few minutes it also drops rows of writers long gone.
    /// </summary>
    private async Task KeepLogDurableAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var ticks = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await MakeDurableAsync(KeeperSlot).ConfigureAwait(false);
                    if (++ticks % 300 == 0)
                    {
                        await using var prune = _dataSource.CreateCommand(PruneDurableSql);
                        prune.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
                        await prune.ExecuteNonQueryAsync(_stopping.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception exception) when (exception is NpgsqlException or TimeoutException or InvalidOperationException)
                {
                    // The database is unreachable or the schema not there yet: the next tick tries again.
                    LogKeeperFailed(_logger, exception);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    /// <summary>
    /// Closes a loop's inbox once the loop has stopped and fails whatever slipped in meanwhile (a request that passed
    /// the disposed check just before disposal), so no caller waits forever.
    /// </summary>
    private static void FailLateRequests(Channel<object> inbox)
    {
        inbox.Writer.TryComplete();
        var disposed = new ObjectDisposedException(nameof(PostgresGrainStorage));
        while (inbox.Reader.TryRead(out var late))
        {
            (late as IPendingRequest)?.Fail(disposed);
        }
    }

    private static NpgsqlParameter ArrayParameter<T>(T[] values, NpgsqlDbType elementType)
        => new NpgsqlParameter<T[]> { TypedValue = values, NpgsqlDbType = NpgsqlDbType.Array | elementType };

    private readonly record struct RowKey(GrainId GrainId, string StateName);

    /// <summary>A fence of a pending write: the row it names and the caller's fence, for the conflict message.</summary>
    private readonly record struct PendingFence(RowKey Key, WriteFence Fence);

    /// <summary>What the loops need of a waiting caller without knowing its result type.</summary>
    private interface IPendingRequest
    {
        void Fail(Exception exception);
    }

    /// <summary>
    /// One caller's request waiting for its batch. It completes once: with its result, its batch's error, or the
    /// caller's cancellation, whichever comes first; a later attempt to complete it is ignored.
    /// </summary>
    private abstract class PendingRequest<TResult> : IPendingRequest
    {
        private readonly TaskCompletionSource<TResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _cancellation;

        protected PendingRequest(CancellationToken cancellationToken)
        {
            if (cancellationToken.CanBeCanceled)
            {
                // The caller stops waiting at once, even when its batch is already in flight; the batch's result for it
                // is then dropped and nobody else in the batch notices.
                _cancellation = cancellationToken.UnsafeRegister(
                    static (state, token) => ((PendingRequest<TResult>)state!)._completion.TrySetCanceled(token), this);
            }
        }

        public Task<TResult> Task => _completion.Task;

        /// <summary>The caller gave up (cancelled) before the request was sent.</summary>
        public bool IsAbandoned => _completion.Task.IsCompleted;

        public void Succeed(TResult result)
        {
            _cancellation.Dispose();
            _completion.TrySetResult(result);
        }

        public void Fail(Exception exception)
        {
            _cancellation.Dispose();
            _completion.TrySetException(exception);
        }
    }

    /// <summary>One caller's write waiting for its batch.</summary>
    private sealed class PendingWrite(
        RowKey key, byte[]? payload, long expectedVersion, PendingFence[] fences, LogRecord[] records, CancellationToken cancellationToken)
        : PendingRequest<WriteResult>(cancellationToken)
    {
        public RowKey Key { get; } = key;

        public byte[]? Payload { get; } = payload;

        public long ExpectedVersion { get; } = expectedVersion;

        public PendingFence[] Fences { get; } = fences;

        /// <summary>The distinct rows this write fences on, other than its own (which it locks for update anyway):
        /// worked out once, here on the caller's thread, since the writer loop looks at them on every step.</summary>
        public RowKey[] FenceRows { get; } = OtherRows(key, fences);

        /// <summary>A loop, not a LINQ chain: a write usually names one or two fences, and a failover makes tens of
        /// thousands of writes at once (the chain's iterators and hash set were 2.5% of that window's garbage).</summary>
        private static RowKey[] OtherRows(RowKey key, PendingFence[] fences)
        {
            if (fences.Length == 0)
            {
                return [];
            }

            var rows = new List<RowKey>(fences.Length);
            foreach (var fence in fences)
            {
                if (fence.Key != key && !rows.Contains(fence.Key))
                {
                    rows.Add(fence.Key);
                }
            }

            return [.. rows];
        }

        public LogRecord[] Records { get; } = records;

        /// <summary>Arrival order, set by the writer loop; deferred writes are reconsidered oldest first.</summary>
        public long Sequence { get; set; }
    }

    /// <summary>A batch finished (durable or failed) and releases its rows; <paramref name="StillOnConnection"/> when it
    /// still counts among the batches on a connection (and, <paramref name="Appending"/>, among the appending ones):
    /// it did not report <see cref="AppendCommitted"/>.</summary>
    private sealed record BatchCompleted(List<PendingWrite> Writes, bool Appending, bool StillOnConnection);

    /// <summary>An appending batch committed; it waits for its flush without a connection or an appending slot.</summary>
    private sealed class AppendCommitted
    {
        public static readonly AppendCommitted Instance = new();
    }

    private sealed class StopSignal
    {
        public static readonly StopSignal Instance = new();
    }
}
