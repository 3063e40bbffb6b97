using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    private const int MaxAttempts = 3;

    /// <summary>The durable-frontier row of the once-a-second keeper, apart from the shared flush's (<see cref="FlushSlot"/>).</summary>
    private const int KeeperSlot = -1;

    private async Task ExecuteAndReportAsync(List<PendingWrite> batch, bool appending)
    {
        var onConnection = true;
        try
        {
            var outcomes = await ExecuteBatchAsync(batch, appending).ConfigureAwait(false);
            if (appending)
            {
                // Committed, not yet flushed: the next batch may take this one's connection, and the next appending
                // batch the log's head row, while this one waits for a durability transaction it shares with every
                // batch that committed meanwhile. Nothing of it is acknowledged before that (its writes without
                // records committed asynchronously too).
                onConnection = false;
                _writeInbox.Writer.TryWrite(AppendCommitted.Instance);
                if (Array.Exists(outcomes, outcome => outcome.NewVersion is not null))
                {
                    await WhenDurableAsync().ConfigureAwait(false);
                }
            }

            var conflicts = 0;
            var fenced = 0;
            var records = 0;
            var errors = new Exception?[batch.Count];
            for (var i = 0; i < batch.Count; i++)
            {
                var write = batch[i];
                var outcome = outcomes[i];
                if (outcome.NewVersion is not null)
                {
                    records += write.Records.Length;
                    continue;
                }

                if (!outcome.WriterAlive)
                {
                    fenced++;
                    errors[i] = new SiloFencedException(
                        $"Silo {_writerFence?.Writer} has been declared dead, so its write of {write.Key.GrainId} ({write.Key.StateName}) was refused; " +
                        "its grains belong to other silos now. Retry: the call reaches the new owner.");
                    continue;
                }

                // The snapshot may predate the write that beat us (we then waited on its row lock); a "stored" version
                // equal to the expected one would be a lie, so say we do not know.
                long? stored = outcome.SeenVersion ?? 0;
                if (stored == write.ExpectedVersion)
                {
                    stored = null;
                }

                // A write whose own row moved on is reported as such even when a fence failed too, as the in-memory
                // storage does: the activation must reload either way, and its own row is the more direct reason.
                if (outcome.FailedFence is { } fenceIndex && stored is null)
                {
                    fenced++;
                    errors[i] = StorageConflict.Fenced(write.Key.GrainId, write.Fences[fenceIndex].Fence, outcome.FoundVersion);
                    continue;
                }

                conflicts++;
                errors[i] = StorageConflict.Create(write.Key.GrainId, write.Key.StateName, write.ExpectedVersion, stored);
            }

            // Counted before any caller is released, so a caller that has its result also sees its write counted.
            Statistics.RecordBatch(batch.Count, conflicts, fenced, records);
            for (var i = 0; i < batch.Count; i++)
            {
                if (errors[i] is { } error)
                {
                    batch[i].Fail(error);
                }
                else
                {
                    batch[i].Succeed(new WriteResult(outcomes[i].NewVersion!.Value, outcomes[i].LastOffset));
                }
            }
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
            _writeInbox.Writer.TryWrite(new BatchCompleted(batch, appending, onConnection));
        }
    }

    private async Task<Outcome[]> ExecuteBatchAsync(List<PendingWrite> batch, bool appends)
    {
        // Rows in a fixed order lower the odds of a deadlock with another silo's batch (two activations of one grain
        // during a membership change); the statement applies them in input order where PostgreSQL lets it.
        var order = Enumerable.Range(0, batch.Count).ToArray();
        Array.Sort(order, (a, b) => CompareKeys(batch[a].Key, batch[b].Key));
        var full = batch.Exists(write => write.Fences.Length > 0 || write.Records.Length > 0);

        // The statement names a failed fence by its place in the flat fence list, which runs in row order.
        var firstFence = new int[batch.Count];
        var fences = 0;
        foreach (var index in order)
        {
            firstFence[index] = fences;
            fences += batch[index].Fences.Length;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var outcomes = new Outcome[batch.Count];
                var seen = new bool[batch.Count];
                await using (var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false))
                await using (var command = new NpgsqlBatch(connection))
                {
                    var statement = new NpgsqlBatchCommand(full ? FencedLoggedWriteSql : WriteSql);
                    AddParameters(statement.Parameters, batch, order, full);

                    // A small batch runs a prepared statement with its generic plan: planning the statement costs the
                    // server about a millisecond, more than running it for a few rows. So does a batch of updates
                    // only, at any size: with its lookups pinned (KeyLookupPlans) the generic plan runs 512 updates as
                    // fast as a custom plan, which took 5-8 ms to plan. A larger batch with first writes (inserts) is
                    // planned for its own rows: the generic plan's row guesses join the inserted rows back to the
                    // input with a nested loop, 56-75 ms against 15-21 ms for 512 first writes (2026-11-23).
                    var generic = batch.Count <= GenericPlanMaxRows || UpdatesOnly(batch);

                    // An appending batch commits without waiting for its flush, so that it holds the log's head row
                    // only briefly; the caller makes it durable (WhenDurableAsync) before acknowledging anything.
                    var settings = (appends, generic) switch
                    {
                        (true, true) => BatchAsynchronousCommitGenericPlanSql,
                        (true, false) => BatchAsynchronousCommitSql,
                        (false, true) => BatchGenericPlanSql,
                        _ => BatchKeyLookupSql,
                    };
                    command.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
                    command.BatchCommands.Add(new NpgsqlBatchCommand(settings));
                    command.BatchCommands.Add(statement);
                    command.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));

                    if (generic)
                    {
                        // Once per physical connection: the pool keeps prepared statements, later calls cost nothing.
                        await command.PrepareAsync().ConfigureAwait(false);
                    }

                    // Results are handed out only after the reader is disposed, i.e. after the server confirmed the
                    // statement (and with it the transaction) completed.
                    await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
                    while (!IsOutcomes(reader) && await reader.NextResultAsync().ConfigureAwait(false))
                    {
                    }

                    while (await reader.ReadAsync().ConfigureAwait(false))
                    {
                        var index = order[(int)reader.GetInt64(0) - 1];
                        seen[index] = true;
                        outcomes[index] = new Outcome(
                            NullableInt64(reader, 1),
                            NullableInt64(reader, 2),
                            reader.GetBoolean(3),
                            full && !reader.IsDBNull(4) ? (int)reader.GetInt64(4) - 1 - firstFence[index] : null,
                            full ? NullableInt64(reader, 5) : null,
                            full ? NullableInt64(reader, 6) : null);
                    }

                    // The COMMIT's result: an error there (a deferred check, a lost connection) surfaces here.
                    while (await reader.NextResultAsync().ConfigureAwait(false))
                    {
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
                // The statement was rolled back as a whole (rows, head and records alike), so running it again cannot
                // apply anything twice.
                LogBatchRetried(_logger, batch.Count, attempt, exception.SqlState);
            }
        }
    }

    private static bool UpdatesOnly(List<PendingWrite> batch)
    {
        foreach (var write in batch)
        {
            if (write.ExpectedVersion < 1)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether the reader is at the batch statement's result (its first column is the write's ordinal).</summary>
    private static bool IsOutcomes(NpgsqlDataReader reader) => reader.FieldCount > 3 && reader.GetName(0) == "ord";

    private NpgsqlBatchCommand DurableCommand(int slot) => new(DurableSql)
    {
        Parameters =
        {
            new NpgsqlParameter<string> { TypedValue = _options.ClusterId },
            new NpgsqlParameter<string> { TypedValue = $"{_instanceId}/{slot}" },
        },
    };

    private NpgsqlBatchCommand NotifyCommand() => new(NotifySql) { Parameters = { new NpgsqlParameter<string> { TypedValue = _options.ClusterId } } };

    private void AddParameters(NpgsqlParameterCollection parameters, List<PendingWrite> batch, int[] order, bool full)
    {
        var types = new string[batch.Count];
        var keys = new string[batch.Count];
        var names = new string[batch.Count];
        var payloads = new byte[]?[batch.Count];
        var expected = new long[batch.Count];
        var arrival = new int[batch.Count];
        for (var row = 0; row < order.Length; row++)
        {
            var write = batch[order[row]];
            types[row] = write.Key.GrainId.Type;
            keys[row] = write.Key.GrainId.Key;
            names[row] = write.Key.StateName;
            payloads[row] = write.Payload;
            expected[row] = write.ExpectedVersion;
            arrival[row] = order[row];
        }

        parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
        parameters.Add(ArrayParameter(types, NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(keys, NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(names, NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(payloads, NpgsqlDbType.Bytea));
        parameters.Add(ArrayParameter(expected, NpgsqlDbType.Bigint));
        if (!full)
        {
            AddWriterParameters(parameters);
            return;
        }

        parameters.Add(ArrayParameter(arrival, NpgsqlDbType.Integer));

        // Fences and records are flattened in row order; each names its write by the write's ordinal in the input
        // (1-based, as WITH ORDINALITY counts). A fence's ordinal in the flat list identifies it in the result.
        var fenceWrites = new List<long>();
        var fenceTypes = new List<string>();
        var fenceKeys = new List<string>();
        var fenceNames = new List<string>();
        var fenceVersions = new List<long>();
        var recordWrites = new List<long>();
        var recordTypes = new List<string>();
        var recordKeys = new List<string>();
        var recordPayloads = new List<byte[]>();
        for (var row = 0; row < order.Length; row++)
        {
            var write = batch[order[row]];
            foreach (var fence in write.Fences)
            {
                fenceWrites.Add(row + 1);
                fenceTypes.Add(fence.Key.GrainId.Type);
                fenceKeys.Add(fence.Key.GrainId.Key);
                fenceNames.Add(fence.Key.StateName);
                fenceVersions.Add(fence.Fence.Version);
            }

            foreach (var record in write.Records)
            {
                recordWrites.Add(row + 1);
                recordTypes.Add(record.Type);
                recordKeys.Add(record.Key);
                recordPayloads.Add(record.Payload);
            }
        }

        parameters.Add(ArrayParameter(fenceWrites.ToArray(), NpgsqlDbType.Bigint));
        parameters.Add(ArrayParameter(fenceTypes.ToArray(), NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(fenceKeys.ToArray(), NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(fenceNames.ToArray(), NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(fenceVersions.ToArray(), NpgsqlDbType.Bigint));
        parameters.Add(ArrayParameter(recordWrites.ToArray(), NpgsqlDbType.Bigint));
        parameters.Add(ArrayParameter(recordTypes.ToArray(), NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(recordKeys.ToArray(), NpgsqlDbType.Text));
        parameters.Add(ArrayParameter(recordPayloads.ToArray(), NpgsqlDbType.Bytea));
        AddWriterParameters(parameters);
    }

    /// <summary>The silo whose membership row fences the batch, or NULLs outside a cluster.</summary>
    private void AddWriterParameters(NpgsqlParameterCollection parameters)
    {
        var writer = _writerFence?.Writer;
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)writer?.Endpoint ?? DBNull.Value });
        parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = (object?)writer?.Generation ?? DBNull.Value });
    }

    private static long? NullableInt64(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);

    private static int CompareKeys(RowKey a, RowKey b)
    {
        var result = string.CompareOrdinal(a.GrainId.Type, b.GrainId.Type);
        if (result == 0)
        {
            result = string.CompareOrdinal(a.GrainId.Key, b.GrainId.Key);
        }

        return result != 0 ? result : string.CompareOrdinal(a.StateName, b.StateName);
    }

    /// <summary>What the batch statement reported for one write.</summary>
    /// <param name="NewVersion">The row's new version when the write committed.</param>
    /// <param name="SeenVersion">The row's version in the statement's snapshot, for the conflict message.</param>
    /// <param name="WriterAlive">False when the writing silo was Dead in the membership table: nothing was written.</param>
    /// <param name="FailedFence">Index into the write's fences of the first one that did not hold.</param>
    /// <param name="FoundVersion">The version that fence row held (0 when absent).</param>
    /// <param name="LastOffset">The offset of the write's last log record, when it appended any.</param>
    private readonly record struct Outcome(long? NewVersion, long? SeenVersion, bool WriterAlive, int? FailedFence, long? FoundVersion, long? LastOffset);
}
