using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    // One statement per batch, so one round trip and one (implicit) transaction. Updates match only rows still at the
    // expected version; inserts (expected 0) lose to an existing row. The final SELECT returns one row per input:
    // new_version when it won, otherwise the version the statement's snapshot saw, for the conflict message.
    private const string WriteSql =
        """
        WITH input AS (
            SELECT t.ord, t.grain_type, t.grain_key, t.state_name, t.payload, t.expected
            FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[]) WITH ORDINALITY
                AS t(grain_type, grain_key, state_name, payload, expected, ord)
        ),
        updated AS (
            UPDATE grain_state AS g
            SET version = g.version + 1, payload = i.payload, updated_at = now()
            FROM input AS i
            WHERE i.expected > 0
              AND g.cluster_id = $1 AND g.grain_type = i.grain_type AND g.grain_key = i.grain_key
              AND g.state_name = i.state_name AND g.version = i.expected
            RETURNING i.ord, g.version
        ),
        inserted AS (
            INSERT INTO grain_state AS g (cluster_id, grain_type, grain_key, state_name, version, payload)
            SELECT $1, i.grain_type, i.grain_key, i.state_name, 1, i.payload
            FROM input AS i
            WHERE i.expected = 0
            ORDER BY i.ord
            ON CONFLICT DO NOTHING
            RETURNING g.grain_type, g.grain_key, g.state_name, g.version
        ),
        written AS (
            SELECT u.ord, u.version FROM updated AS u
            UNION ALL
            SELECT i.ord, n.version
            FROM inserted AS n
            JOIN input AS i ON i.expected = 0 AND i.grain_type = n.grain_type AND i.grain_key = n.grain_key
                AND i.state_name = n.state_name
        )
        SELECT i.ord, w.version AS new_version, s.version AS seen_version
        FROM input AS i
        LEFT JOIN written AS w ON w.ord = i.ord
        LEFT JOIN grain_state AS s ON s.cluster_id = $1 AND s.grain_type = i.grain_type AND s.grain_key = i.grain_key
            AND s.state_name = i.state_name
        """;

    private const int MaxAttempts = 3;

    // All batching state lives on this one loop; batches report back through the inbox, so nothing here needs a lock.
    // A row's writes leave in arrival order: a write for a row that is in flight or already has writes waiting joins
    // the end of that row's queue, and when the row's batch finishes the head of its queue goes first.
    private async Task RunWriterAsync()
    {
        var state = new WriterState();
        var inFlight = 0;
        var stopping = false;
        try
        {
            while (true)
            {
                while (_inbox.Reader.TryRead(out var message))
                {
                    switch (message)
                    {
                        case PendingWrite write:
                            state.Ready.Enqueue(write);
                            break;
                        case BatchCompleted completed:
                            inFlight--;
                            foreach (var write in completed.Writes)
                            {
                                state.Busy.Remove(write.Key);
                                if (state.Blocked.ContainsKey(write.Key))
                                {
                                    state.Releasable.Enqueue(write.Key);
                                }
                            }

                            break;
                        case StopSignal:
                            stopping = true;
                            break;
                    }
                }

                if (inFlight < _options.MaxConcurrentBatches && (state.Ready.Count > 0 || state.Releasable.Count > 0))
                {
                    var batch = TakeBatch(state);
                    if (batch.Count > 0)
                    {
                        inFlight++;
                        _ = ExecuteAndReportAsync(batch);
                    }

                    continue;
                }

                if (stopping && inFlight == 0 && state.Ready.Count == 0 && state.Blocked.Count == 0)
                {
                    break;
                }

                await _inbox.Reader.WaitToReadAsync().ConfigureAwait(false);
            }
        }
        catch (Exception exception)
        {
            // Only a bug gets here; failing every waiting caller beats leaving them hanging forever.
            LogWriterFailed(_logger, exception);
            foreach (var write in state.Ready.Concat(state.Blocked.Values.SelectMany(queue => queue)))
            {
                write.Fail(exception);
            }
        }

        _inbox.Writer.TryComplete();
        var disposed = new ObjectDisposedException(nameof(PostgresGrainStorage));
        while (_inbox.Reader.TryRead(out var late))
        {
            (late as PendingWrite)?.Fail(disposed);
        }
    }

    private List<PendingWrite> TakeBatch(WriterState state)
    {
        var batch = new List<PendingWrite>(Math.Min(state.Ready.Count + state.Releasable.Count, _options.MaxBatchSize));
        while (batch.Count < _options.MaxBatchSize && state.Releasable.TryDequeue(out var key))
        {
            var queue = state.Blocked[key];
            var write = queue.Dequeue();
            if (queue.Count == 0)
            {
                state.Blocked.Remove(key);
            }
            else if (write.IsAbandoned)
            {
                state.Releasable.Enqueue(key);
            }

            if (!write.IsAbandoned)
            {
                state.Busy.Add(key);
                batch.Add(write);
            }
        }

        while (batch.Count < _options.MaxBatchSize && state.Ready.TryDequeue(out var write))
        {
            if (write.IsAbandoned)
            {
                continue; // Cancelled before it was sent: dropped unwritten.
            }

            // One statement cannot apply two writes to one row in order, and two batches on one row would contend
            // for its lock; so the write waits for the row's earlier writes.
            if (state.Busy.Contains(write.Key) || state.Blocked.ContainsKey(write.Key))
            {
                if (!state.Blocked.TryGetValue(write.Key, out var queue))
                {
                    state.Blocked[write.Key] = queue = new Queue<PendingWrite>();
                }

                queue.Enqueue(write);
                continue;
            }

            state.Busy.Add(write.Key);
            batch.Add(write);
        }

        return batch;
    }

    /// <summary>The writer loop's bookkeeping; touched only by the loop.</summary>
    private sealed class WriterState
    {
        /// <summary>Writes in arrival order, not yet looked at.</summary>
        public Queue<PendingWrite> Ready { get; } = new();

        /// <summary>Per row, writes waiting for the row's earlier write to finish.</summary>
        public Dictionary<RowKey, Queue<PendingWrite>> Blocked { get; } = [];

        /// <summary>Rows with a write in flight.</summary>
        public HashSet<RowKey> Busy { get; } = [];

        /// <summary>Rows no longer in flight whose waiting writes may go next.</summary>
        public Queue<RowKey> Releasable { get; } = new();
    }

    private async Task ExecuteAndReportAsync(List<PendingWrite> batch)
    {
        try
        {
            var outcomes = await ExecuteBatchAsync(batch).ConfigureAwait(false);
            var conflicts = 0;
            for (var i = 0; i < batch.Count; i++)
            {
                var write = batch[i];
                var (newVersion, seenVersion) = outcomes[i];
                if (newVersion is { } version)
                {
                    write.Succeed(version);
                    continue;
                }

                conflicts++;
                // The snapshot may predate the write that beat us (we then waited on its row lock); a "stored" version
                // equal to the expected one would be a lie, so say we do not know.
                long? stored = seenVersion ?? 0;
                if (stored == write.ExpectedVersion)
                {
                    stored = null;
                }

                write.Fail(StorageConflict.Create(write.Key.GrainId, write.Key.StateName, write.ExpectedVersion, stored));
            }

            Statistics.RecordBatch(batch.Count, conflicts);
        }
        catch (Exception exception)
        {
            LogBatchFailed(_logger, batch.Count, exception);
            foreach (var write in batch)
            {
                write.Fail(exception);
            }
        }
        finally
        {
            _inbox.Writer.TryWrite(new BatchCompleted(batch));
        }
    }

    private async Task<(long? NewVersion, long? SeenVersion)[]> ExecuteBatchAsync(List<PendingWrite> batch)
    {
        // Rows in a fixed order lower the odds of a deadlock with another silo's batch (two activations of one grain
        // during a membership change); the statement applies them in input order where PostgreSQL lets it.
        var order = Enumerable.Range(0, batch.Count).ToArray();
        Array.Sort(order, (a, b) => CompareKeys(batch[a].Key, batch[b].Key));

        var types = new string[batch.Count];
        var keys = new string[batch.Count];
        var names = new string[batch.Count];
        var payloads = new byte[]?[batch.Count];
        var expected = new long[batch.Count];
        for (var row = 0; row < order.Length; row++)
        {
            var write = batch[order[row]];
            types[row] = write.Key.GrainId.Type;
            keys[row] = write.Key.GrainId.Key;
            names[row] = write.Key.StateName;
            payloads[row] = write.Payload;
            expected[row] = write.ExpectedVersion;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var outcomes = new (long? NewVersion, long? SeenVersion)[batch.Count];
                var seen = new bool[batch.Count];
                await using (var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false))
                await using (var command = new NpgsqlCommand(WriteSql, connection))
                {
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
                    command.Parameters.Add(ArrayParameter(types, NpgsqlDbType.Text));
                    command.Parameters.Add(ArrayParameter(keys, NpgsqlDbType.Text));
                    command.Parameters.Add(ArrayParameter(names, NpgsqlDbType.Text));
                    command.Parameters.Add(ArrayParameter(payloads, NpgsqlDbType.Bytea));
                    command.Parameters.Add(ArrayParameter(expected, NpgsqlDbType.Bigint));

                    // Results are handed out only after the reader is disposed, i.e. after the server confirmed the
                    // statement (and with it the implicit transaction) completed.
                    await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
                    while (await reader.ReadAsync().ConfigureAwait(false))
                    {
                        var index = order[(int)reader.GetInt64(0) - 1];
                        seen[index] = true;
                        outcomes[index] = (
                            reader.IsDBNull(1) ? null : reader.GetInt64(1),
                            reader.IsDBNull(2) ? null : reader.GetInt64(2));
                    }
                }

                if (Array.IndexOf(seen, false) >= 0)
                {
                    throw new InvalidOperationException("The grain_state batch statement did not report on every row.");
                }

                return outcomes;
            }
            catch (PostgresException exception) when (
                attempt < MaxAttempts &&
                exception.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                // The statement was rolled back as a whole, so running it again cannot apply anything twice.
                LogBatchRetried(_logger, batch.Count, attempt, exception.SqlState);
            }
        }
    }

    private static int CompareKeys(RowKey a, RowKey b)
    {
        var result = string.CompareOrdinal(a.GrainId.Type, b.GrainId.Type);
        if (result == 0)
        {
            result = string.CompareOrdinal(a.GrainId.Key, b.GrainId.Key);
        }

        return result != 0 ? result : string.CompareOrdinal(a.StateName, b.StateName);
    }
}
