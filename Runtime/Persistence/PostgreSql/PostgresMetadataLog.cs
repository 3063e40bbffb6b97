using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// The read side of the metadata log that <see cref="PostgresGrainStorage"/> appends to (tables <c>metadata_log</c>,
/// <c>metadata_log_head</c> and <c>metadata_log_durable</c>), for one cluster. Offsets are gap-free and in commit
/// order, and this reader reads only up to the log's durable frontier (see 004_metadata_log_durable.sql), below which
/// every offset is committed and durable; so a reader that remembers the last offset it saw never skips a record, and
/// never sees one that a database crash could still take back.
/// </summary>
/// <remarks>
/// <see cref="WaitForAppendAsync"/> is woken by <c>LISTEN</c> on one connection of the data source, opened on first
/// use and held (it takes one slot of the pool) until disposal. If that connection drops, it reconnects with backoff;
/// meanwhile waits simply run to their <c>maxWait</c>, so callers fall back to polling and lose nothing, because
/// they always read after waiting. Notifications are only a hint: on every (re)connect and every idle minute the
/// listener reads the head, which also covers notifications lost while disconnected.
/// </remarks>
public sealed partial class PostgresMetadataLog : IMetadataLog, IAsyncDisposable
{
    private const string ReadSql =
        "SELECT log_offset, type, key, payload, written_at FROM metadata_log WHERE cluster_id = $1 AND log_offset > $2 " +
        $"AND log_offset <= {PostgresGrainStorage.FrontierSql} ORDER BY log_offset LIMIT $3";

    /// <summary>The durable frontier: the newest offset a reader may read, and the one a write's offset is covered by
    /// once the write is acknowledged.</summary>
    private const string HeadSql = $"SELECT {PostgresGrainStorage.FrontierSql}";

    private static readonly TimeSpan IdleCheck = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(10);

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _clusterId;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _listener;
    private long _knownHead;
    private int _disposed;

    /// <summary>Creates the log reader for the cluster named in <paramref name="options"/>. It does not own <paramref name="dataSource"/>.</summary>
    public PostgresMetadataLog(NpgsqlDataSource dataSource, IOptions<PostgresStorageOptions> options, ILogger<PostgresMetadataLog>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Value.ClusterId);
        _dataSource = dataSource;
        _clusterId = options.Value.ClusterId;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var records = new List<LoggedRecord>();
        if (maxCount == 0)
        {
            return records;
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ReadSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = afterOffset });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = maxCount });

        // Every silo reads here after every flush it hears of: prepared once per physical connection, so PostgreSQL
        // does not plan it each time (it spent more planning it than running it).
        await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            records.Add(new LoggedRecord(
                reader.GetInt64(0),
                reader.GetString(1),
                reader.GetString(2),
                reader.GetFieldValue<byte[]>(3),
                reader.GetFieldValue<DateTimeOffset>(4)));
        }

        return records;
    }

    /// <inheritdoc />
    public async Task<long> GetHeadAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await ReadHeadAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Returns at once when a record after <paramref name="afterOffset"/> is already known to exist.</remarks>
    public async Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        EnsureListening();
        var started = TimeProvider.System.GetTimestamp();
        while (true)
        {
            Task signal;
            lock (_gate)
            {
                // Taken before the check, so a head learned after the check still wakes this wait.
                signal = _signal.Task;
            }

            if (Volatile.Read(ref _knownHead) > afterOffset || Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            var remaining = maxWait == Timeout.InfiniteTimeSpan
                ? Timeout.InfiniteTimeSpan
                : maxWait - TimeProvider.System.GetElapsedTime(started);
            if (remaining != Timeout.InfiniteTimeSpan && remaining <= TimeSpan.Zero)
            {
                return; // The caller reads either way: this is the polling fallback.
            }

            try
            {
                await signal.WaitAsync(remaining, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return;
            }
        }
    }

    /// <summary>Stops listening; waits in progress return, later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        Task? listener;
        lock (_gate)
        {
            listener = _listener;
            _signal.TrySetResult();
        }

        if (listener is not null)
        {
            await listener.ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private void EnsureListening()
    {
        lock (_gate)
        {
            // Started on first use rather than in the constructor: resolving the log must not need the schema yet.
            _listener ??= Task.Run(ListenAsync);
        }
    }

    private async Task ListenAsync()
    {
        var failures = 0;
        var stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                connection.Notification += OnNotification;
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresGrainStorage.LogChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
                }

                if (failures > 0)
                {
                    LogListenerReconnected(_logger, _clusterId);
                }

                failures = 0;
                try
                {
                    while (true)
                    {
                        // Read after LISTEN, so an append committed before it took effect is not missed; and again
                        // whenever idle, which also proves the connection is still alive.
                        Advance(await ReadHeadAsync(connection, stopping).ConfigureAwait(false));
                        while (await connection.WaitAsync(IdleCheck, stopping).ConfigureAwait(false))
                        {
                        }
                    }
                }
                finally
                {
                    await UnlistenAsync(connection).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                // Whatever broke (connection lost, server restarting, schema not there yet), the listener must outlive
                // it: without it waits only ever end at maxWait.
                failures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(MaxReconnectDelay.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(failures, 10))));
                LogListenerFailed(_logger, _clusterId, delay, exception);
                try
                {
                    await Task.Delay(delay, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Before the listener's connection goes back to the pool, which does not reset sessions (see
    /// <see cref="PostgresStorageServiceCollectionExtensions.DataSource"/>): a broken one is not taken back anyway.</summary>
    private static async Task UnlistenAsync(NpgsqlConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection) { CommandTimeout = 5 };
            await unlisten.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // The connection is broken or busy: the pool discards a broken one.
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs args)
    {
        // Payload: cluster_id:durable_offset. Cluster ids may contain ':', offsets never do.
        var payload = args.Payload;
        var colon = payload.LastIndexOf(':');
        if (colon > 0 &&
            payload.AsSpan(0, colon).SequenceEqual(_clusterId) &&
            long.TryParse(payload.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            Advance(offset);
        }
    }

    private void Advance(long head)
    {
        var known = Volatile.Read(ref _knownHead);
        while (head > known)
        {
            var previous = Interlocked.CompareExchange(ref _knownHead, head, known);
            if (previous == known)
            {
                TaskCompletionSource signal;
                lock (_gate)
                {
                    signal = _signal;
                    _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                signal.TrySetResult();
                return;
            }

            known = previous;
        }
    }

    private async Task<long> ReadHeadAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(HeadSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long head ? head : 0;
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Listening for metadata log appends of cluster {ClusterId} failed; reconnecting in {Delay} (waits fall back to polling meanwhile)")]
    private static partial void LogListenerFailed(ILogger logger, string clusterId, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Listening for metadata log appends of cluster {ClusterId} again")]
    private static partial void LogListenerReconnected(ILogger logger, string clusterId);
}
