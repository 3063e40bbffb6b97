using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// Committed offsets of consumer groups in PostgreSQL, as a compacted log (table <c>consumer_offset_log</c>,
/// 009_consumer_offset_log.sql): a group's commit appends one row holding every partition it commits, and a
/// partition's offset is its newest entry. Commits of many groups are coalesced into batches, each one multi-row insert
/// in one transaction and so one disk flush; every caller still gets its own result. See docs/offsets.md.
/// </summary>
/// <remarks>
/// <para>Group commit: a commit is sent at once when fewer than <see cref="PostgresStorageOptions.MaxConcurrentOffsetBatches"/>
/// batches are in flight; otherwise it waits and leaves in the next batch with everything that arrived meanwhile (up to
/// <see cref="PostgresStorageOptions.MaxOffsetBatchSize"/> entries). A group never has commits in two batches in flight at
/// once: its later commits wait for the batch in flight, so they are applied in the order they were made, and a
/// partition committed twice in one batch keeps the later commit.</para>
/// <para>Compaction: the store counts the entries each group's rows hold. Once they reach
/// <see cref="CompactionFactor"/> times the group's partitions (at least <see cref="MinCompactionEntries"/>), the batch
/// that took them there rewrites the group's rows as one, with the newest entry of each partition, after its callers
/// have their answers and before the group's next commit, read or delete. So a group's rows stay within a small multiple
/// of its offsets, and each committed entry is written about once more on average. A group's count starts from what
/// <see cref="ReadAsync"/> found, or from nothing on a silo that never read the group (its first compaction then sets
/// it).</para>
/// <para>Durability: a commit completes only once its transaction has committed with synchronous_commit on (a session
/// that has it off gets it switched on for the batch; a stronger server setting such as remote_apply is kept).</para>
/// <para>Fencing: every batch locks the writer silo's membership row <c>FOR KEY SHARE</c> and writes nothing when it is
/// Dead, exactly as <see cref="PostgresGrainStorage"/>'s writes do; each of its callers gets
/// <see cref="SiloFencedException"/>.</para>
/// <para>Failures: a batch that fails for any other reason (connection lost, server error, timeout) may or may not have
/// committed; each of its callers gets <see cref="WriteOutcomeUnknownException"/> with the cause inside. Commits are
/// idempotent (they set, never add), so retrying is always safe. Bad input is refused before it joins a batch
/// (<see cref="ArgumentException"/>, see <see cref="OffsetValidation"/>), so it never fails anyone else's commit.</para>
/// <para>Cancellation: a commit cancelled before its batch is sent is never sent; cancelled later, the caller stops
/// waiting but the commit may still land, as when a response is lost.</para>
/// </remarks>
public sealed partial class PostgresOffsetStore : IOffsetStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresStorageOptions _options;
    private readonly ILogger _logger;
    private readonly IWriterFence? _writerFence;
    private readonly Channel<object> _inbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _committer;
    private readonly ConcurrentDictionary<string, GroupLog> _groupLogs = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>A group is compacted once its rows hold this many times more entries than it has partitions.</summary>
    public const int CompactionFactor = 8;

    /// <summary>... and at least this many entries, so that small groups are not rewritten every few commits.</summary>
    public const int MinCompactionEntries = 64;

    /// <summary>Creates the store and starts its batch committer. It does not own <paramref name="dataSource"/>.</summary>
    /// <exception cref="OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    /// <param name="dataSource">The database.</param>
    /// <param name="options">Batching limits and the cluster id.</param>
    /// <param name="logger">Optional logger.</param>
    /// <param name="writer">The silo whose membership row fences every write (see <see cref="IWriterFence"/>); none outside a cluster.</param>
    public PostgresOffsetStore(
        NpgsqlDataSource dataSource, IOptions<PostgresStorageOptions> options, ILogger<PostgresOffsetStore>? logger = null, IWriterFence? writer = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        var validation = new PostgresStorageOptionsValidator().Validate(Options.DefaultName, options.Value);
        if (validation.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(PostgresStorageOptions), validation.Failures);
        }

        _dataSource = dataSource;
        _options = options.Value;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _writerFence = writer;
        _committer = Task.Run(RunCommitterAsync);
    }

    /// <summary>Running totals of offset batches, calls and rows.</summary>
    public PostgresOffsetStatistics Statistics { get; } = new();

    /// <inheritdoc />
    /// <remarks>The commits are copied, so the caller may reuse its list at once. An empty list completes at once and
    /// writes nothing.</remarks>
    /// <exception cref="ArgumentException">A commit cannot be stored (see <see cref="OffsetValidation"/>); nothing was sent.</exception>
    /// <exception cref="SiloFencedException">The writer silo has been declared dead; nothing was written.</exception>
    /// <exception cref="WriteOutcomeUnknownException">The batch failed in a way that leaves its outcome unknown; retry.</exception>
    public Task CommitAsync(string groupId, IReadOnlyList<OffsetCommit> commits, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateCommit(groupId, commits);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        if (commits.Count == 0)
        {
            return Task.CompletedTask;
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var pending = new PendingCommit(groupId, [.. commits], cancellationToken);
        if (!_inbox.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(PostgresOffsetStore));
        }

        return pending.Task;
    }

    /// <inheritdoc />
    /// <remarks>Read straight from the table (no batching: a group reads its offsets when it activates), the newest
    /// entry of each partition, ordered by topic name and partition. Every commit acknowledged before the call is seen.</remarks>
    public async Task<IReadOnlyList<CommittedOffset>> ReadAsync(string groupId, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateGroupId(groupId);
        var log = LogOf(groupId);
        await log.Compaction.ConfigureAwait(false);
        await using var command = _dataSource.CreateCommand(ReadSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = groupId });
        Dictionary<OffsetKey, LogEntry>? folded;
        long entries = 0;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            folded = (await FoldAsync(reader, cancellationToken, count => entries += count).ConfigureAwait(false)).GetValueOrDefault(groupId);
        }

        var offsets = (folded?.Values ?? Enumerable.Empty<LogEntry>())
            .OrderBy(entry => entry.Topic, StringComparer.Ordinal).ThenBy(entry => entry.TopicId).ThenBy(entry => entry.Partition)
            .Select(entry => entry.ToCommitted())
            .ToList();
        log.Read(offsets.Count, entries);
        return offsets;
    }

    /// <inheritdoc />
    /// <remarks>One transaction, fenced like a commit batch, with a synchronous commit: the group's rows are rewritten as
    /// one without the deleted partitions (or deleted, with every offset), so <see cref="ListGroupsAsync"/> no longer lists a group with none
    /// left. It is not ordered with the group's commits still in flight (the contract says one group's calls never
    /// overlap).</remarks>
    /// <exception cref="SiloFencedException">The writer silo has been declared dead; nothing was deleted.</exception>
    /// <exception cref="WriteOutcomeUnknownException">The delete failed in a way that leaves its outcome unknown; retry.</exception>
    public async Task<int> DeleteAsync(string groupId, IReadOnlyList<OffsetKey>? partitions, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateGroupId(groupId);
        if (partitions is { Count: 0 })
        {
            return 0;
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return await ExecuteDeleteAsync(groupId, partitions, cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException exception) when (attempt < MaxAttempts && IsTransient(exception))
                {
                    LogDeleteRetried(_logger, groupId, attempt, exception.SqlState);
                }
            }
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            throw OutcomeUnknown($"Deleting offsets of group '{groupId}'", exception);
        }
    }

    /// <inheritdoc />
    /// <remarks>Walks the log's primary key, one index probe per group listed.</remarks>
    public async Task<IReadOnlyList<string>> ListGroupsAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        await using var command = _dataSource.CreateCommand(ListGroupsSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)after ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        return await GroupIdsAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The group ids a query answers, in its order.</summary>
    private static async Task<IReadOnlyList<string>> GroupIdsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var groups = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            groups.Add(reader.GetString(0));
        }

        return groups;
    }

    /// <summary>Stops accepting commits, finishes the ones already accepted and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _inbox.Writer.TryWrite(StopSignal.Instance);
        }

        await _committer.ConfigureAwait(false);
    }

    private async Task<int> ExecuteDeleteAsync(string groupId, IReadOnlyList<OffsetKey>? partitions, CancellationToken cancellationToken)
    {
        var log = LogOf(groupId);
        await log.Compaction.ConfigureAwait(false);
        var outcome = await RewriteAsync([groupId], partitions?.ToHashSet(), removeAll: partitions is null, durable: true, cancellationToken).ConfigureAwait(false)
            ?? throw Fenced($"its delete of offsets of group '{groupId}'");
        var (kept, removed) = outcome[groupId];
        if (kept == 0)
        {
            _groupLogs.TryRemove(groupId, out _);
        }
        else
        {
            log.Rewritten(kept);
        }

        return (int)removed;
    }

    private GroupLog LogOf(string groupId) => _groupLogs.GetOrAdd(groupId, static _ => new GroupLog());

    /// <summary>The silo whose membership row fences a write, or NULLs outside a cluster.</summary>
    private void AddWriterParameters(NpgsqlParameterCollection parameters)
    {
        var writer = _writerFence?.Writer;
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)writer?.Endpoint ?? DBNull.Value });
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = (object?)writer?.Generation ?? DBNull.Value });
    }

    private SiloFencedException Fenced(string what) => new(
        $"Silo {_writerFence?.Writer} has been declared dead, so {what} was refused and nothing was written; " +
        "its grains belong to other silos now. Retry: the call reaches the group's new owner.");

    private static WriteOutcomeUnknownException OutcomeUnknown(string what, Exception exception) => new(
        $"{what} failed and may or may not have been committed ({exception.Message}). Offsets are set, never added, " +
        "so retrying is safe.",
        exception);

    private static bool IsTransient(PostgresException exception)
        => exception.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure;

    private static NpgsqlParameter ArrayParameter<T>(T[] values, NpgsqlDbType elementType)
        => new NpgsqlParameter<T[]> { TypedValue = values, NpgsqlDbType = NpgsqlDbType.Array | elementType };

    /// <summary>
    /// One caller's commit waiting for its batch. It completes once: with success, its batch's error, or the caller's
    /// cancellation, whichever comes first; a later attempt is ignored.
    /// </summary>
    private sealed class PendingCommit
    {
        private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _cancellation;

        public PendingCommit(string groupId, OffsetCommit[] commits, CancellationToken cancellationToken)
        {
            GroupId = groupId;
            Commits = commits;
            if (cancellationToken.CanBeCanceled)
            {
                // The caller stops waiting at once, even when its batch is already in flight; the batch's result for it
                // is then dropped and nobody else in the batch notices.
                _cancellation = cancellationToken.UnsafeRegister(
                    static (state, token) => ((PendingCommit)state!)._completion.TrySetCanceled(token), this);
            }
        }

        public string GroupId { get; }

        public OffsetCommit[] Commits { get; }

        public Task Task => _completion.Task;

        /// <summary>The caller gave up (cancelled) before the commit was sent.</summary>
        public bool IsAbandoned => _completion.Task.IsCompleted;

        public void Succeed()
        {
            _cancellation.Dispose();
            _completion.TrySetResult();
        }

        public void Fail(Exception exception)
        {
            _cancellation.Dispose();
            _completion.TrySetException(exception);
        }
    }

    /// <summary>
    /// What this store knows of one group's rows: how many partitions the group had when it last read or rewrote them,
    /// and how many entries its rows hold since. Only the batch or call that holds the group touches it (a group's calls
    /// never overlap, and it is in one batch at a time), so it needs no lock. A group that moves to another silo leaves
    /// its few dozen bytes here until it comes back (its read sets them again) or its offsets are deleted here.
    /// </summary>
    private sealed class GroupLog
    {
        private long _live;
        private long _entries;

        /// <summary>The compaction running for the group, if any: a delete or read waits for it. Never faults.</summary>
        public Task Compaction { get; set; } = Task.CompletedTask;

        /// <summary>Whether the rows hold enough superseded entries to be rewritten as one.</summary>
        public bool IsDue => _entries >= CompactionFactor * Math.Max(_live, MinCompactionEntries);

        public void Appended(int entries) => _entries += entries;

        public void Read(long live, long entries) => (_live, _entries) = (live, entries);

        public void Rewritten(long live) => (_live, _entries) = (live, live);
    }

    /// <summary>A batch finished (committed or failed); its groups may go again.</summary>
    private sealed record BatchCompleted(List<PendingCommit> Commits);

    private sealed class StopSignal
    {
        public static readonly StopSignal Instance = new();
    }
}

/// <summary>Running totals of a <see cref="PostgresOffsetStore"/>, for metrics, benchmarks and tests.</summary>
public sealed class PostgresOffsetStatistics
{
    private long _batches;
    private long _calls;
    private long _rows;
    private long _fenced;
    private long _failed;
    private long _compactions;

    /// <summary>Offset batches committed: each one transaction, one round trip and one disk flush.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary><see cref="PostgresOffsetStore.CommitAsync"/> calls those batches carried (calls per batch is how well
    /// commits share transactions).</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Partition entries those batches wrote (a partition committed twice in one batch counts once).</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>Groups whose rows those batches rewrote as one (compactions).</summary>
    public long Compactions => Interlocked.Read(ref _compactions);

    /// <summary>Calls refused because the writer silo was declared dead.</summary>
    public long FencedCalls => Interlocked.Read(ref _fenced);

    /// <summary>Batches that failed with an unknown outcome.</summary>
    public long FailedBatches => Interlocked.Read(ref _failed);

    internal void RecordCompactions(int groups) => Interlocked.Add(ref _compactions, groups);

    internal void RecordBatch(int calls, int rows)
    {
        Interlocked.Add(ref _calls, calls);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Increment(ref _batches);
    }

    internal void RecordFenced(int calls) => Interlocked.Add(ref _fenced, calls);

    internal void RecordFailed() => Interlocked.Increment(ref _failed);
}
