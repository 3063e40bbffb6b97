using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    // One statement answers a whole batch. Each requested key keeps its ordinal, so duplicates each get their row;
    // keys without a row return nothing and their callers get null. Nothing is cached anywhere: every read is answered
    // by a statement that started after the read was queued, so it sees every write acknowledged before it was issued.
    // Each key is one primary-key lookup (LATERAL, kept from being flattened into a join by LIMIT): a join left to the
    // planner hashed every row of the cluster whenever its statistics were older than the cluster, as in a failover
    // that writes tens of thousands of partition rows in seconds (measured: 100 ms per batch of 1024 at 30k rows).
    private const string ReadSql =
        """
        SELECT k.ord, g.payload, g.version
        FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k(grain_type, grain_key, state_name, ord)
        CROSS JOIN LATERAL (
            SELECT g.payload, g.version FROM grain_state AS g
            WHERE g.cluster_id = $1 AND g.grain_type = k.grain_type AND g.grain_key = k.grain_key AND g.state_name = k.state_name
            LIMIT 1
        ) AS g
        """;

    // The writer loop's shape without its row bookkeeping: reads take no locks and need no order among themselves.
    // A read is sent at once while fewer than MaxConcurrentReadBatches batches are in flight; otherwise it waits and
    // leaves with everything that arrived meanwhile when a batch returns.
    private async Task RunReaderAsync()
    {
        var ready = new Queue<PendingRead>();
        var inFlight = 0;
        var stopping = false;
        try
        {
            while (true)
            {
                while (_readInbox.Reader.TryRead(out var message))
                {
                    switch (message)
                    {
                        case PendingRead read:
                            ready.Enqueue(read);
                            break;
                        case ReadBatchCompleted:
                            inFlight--;
                            break;
                        case StopSignal:
                            stopping = true;
                            break;
                    }
                }

                if (inFlight < _options.MaxConcurrentReadBatches && ready.Count > 0)
                {
                    var batch = new List<PendingRead>(Math.Min(ready.Count, _options.MaxReadBatchSize));
                    while (batch.Count < _options.MaxReadBatchSize && ready.TryDequeue(out var read))
                    {
                        if (!read.IsAbandoned)
                        {
                            batch.Add(read); // A read cancelled before now is dropped unsent.
                        }
                    }

                    if (batch.Count > 0)
                    {
                        inFlight++;
                        _ = ReadAndReportAsync(batch);
                    }

                    continue;
                }

                if (stopping && inFlight == 0 && ready.Count == 0)
                {
                    break;
                }

                await _readInbox.Reader.WaitToReadAsync().ConfigureAwait(false);
            }
        }
        catch (Exception exception)
        {
            // Only a bug gets here; failing every waiting caller beats leaving them hanging forever.
            LogReaderFailed(_logger, exception);
            foreach (var read in ready)
            {
                read.Fail(exception);
            }
        }

        FailLateRequests(_readInbox);
    }

    private async Task ReadAndReportAsync(List<PendingRead> batch)
    {
        try
        {
            var rows = await ExecuteReadBatchAsync(batch).ConfigureAwait(false);

            // Counted before any caller is released, so a caller that has its result also sees its read counted.
            Statistics.RecordReadBatch(batch.Count);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Succeed(rows[i]);
            }
        }
        catch (Exception exception)
        {
            LogReadBatchFailed(_logger, batch.Count, exception);
            foreach (var read in batch)
            {
                read.Fail(exception);
            }
        }
        finally
        {
            _readInbox.Writer.TryWrite(ReadBatchCompleted.Instance);
        }
    }

    private async Task<StoredGrainState?[]> ExecuteReadBatchAsync(List<PendingRead> batch)
    {
        var types = new string[batch.Count];
        var keys = new string[batch.Count];
        var names = new string[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            (types[i], keys[i], names[i]) = (batch[i].Key.GrainId.Type, batch[i].Key.GrainId.Key, batch[i].Key.StateName);
        }

        var rows = new StoredGrainState?[batch.Count];
        await using var command = _dataSource.CreateCommand(ReadSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
        command.Parameters.Add(ArrayParameter(types, NpgsqlDbType.Text));
        command.Parameters.Add(ArrayParameter(keys, NpgsqlDbType.Text));
        command.Parameters.Add(ArrayParameter(names, NpgsqlDbType.Text));
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            // Each caller gets its own payload array, duplicates included, so none can see another's changes to it.
            var payload = reader.IsDBNull(1) ? null : reader.GetFieldValue<byte[]>(1);
            rows[(int)reader.GetInt64(0) - 1] = new StoredGrainState(payload, reader.GetInt64(2));
        }

        return rows;
    }

    /// <summary>One caller's read waiting for its batch.</summary>
    private sealed class PendingRead(RowKey key, CancellationToken cancellationToken)
        : PendingRequest<StoredGrainState?>(cancellationToken)
    {
        public RowKey Key { get; } = key;
    }

    private sealed class ReadBatchCompleted
    {
        public static readonly ReadBatchCompleted Instance = new();
    }
}
