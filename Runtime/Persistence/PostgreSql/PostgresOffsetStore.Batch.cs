using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresOffsetStore
{
    private const int MaxAttempts = 3;

    // All batching state lives on this one loop; batches report back through the inbox, so nothing here needs a lock.
    // Commits wait in arrival order. A batch takes them from the front, skipping those of groups that have a batch in
    // flight (they wait for it, so one group's commits land in the order they were made and two batches in flight
    // never write the same rows), until it holds MaxOffsetBatchSize rows.
    private async Task RunCommitterAsync()
    {
        var waiting = new LinkedList<PendingCommit>();
        var busy = new HashSet<string>(StringComparer.Ordinal);
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
                        case PendingCommit commit:
                            waiting.AddLast(commit);
                            break;
                        case BatchCompleted completed:
                            inFlight--;
                            foreach (var commit in completed.Commits)
                            {
                                busy.Remove(commit.GroupId);
                            }

                            break;
                        case StopSignal:
                            stopping = true;
                            break;
                    }
                }

                if (inFlight < _options.MaxConcurrentOffsetBatches && waiting.Count > 0)
                {
                    var batch = TakeBatch(waiting, busy);
                    if (batch.Count > 0)
                    {
                        inFlight++;
                        foreach (var commit in batch)
                        {
                            busy.Add(commit.GroupId);
                        }

                        _ = ExecuteAndReportAsync(batch);
                        continue;
                    }
                }

                if (stopping && inFlight == 0 && waiting.Count == 0)
                {
                    break;
                }

                await _inbox.Reader.WaitToReadAsync().ConfigureAwait(false);
            }
        }
        catch (Exception exception)
        {
            // Only a bug gets here; failing every waiting caller beats leaving them hanging forever.
            LogCommitterFailed(_logger, exception);
            foreach (var commit in waiting)
            {
                commit.Fail(exception);
            }
        }

        // Fail whatever slipped in after the stop signal (a call that passed the disposed check just before disposal).
        _inbox.Writer.TryComplete();
        var disposed = new ObjectDisposedException(nameof(PostgresOffsetStore));
        while (_inbox.Reader.TryRead(out var late))
        {
            (late as PendingCommit)?.Fail(disposed);
        }
    }

    private List<PendingCommit> TakeBatch(LinkedList<PendingCommit> waiting, HashSet<string> busy)
    {
        var batch = new List<PendingCommit>();
        var rows = 0;
        var node = waiting.First;
        while (node is not null)
        {
            var next = node.Next;
            var commit = node.Value;
            if (commit.IsAbandoned)
            {
                waiting.Remove(node); // Cancelled before it was sent: dropped unwritten.
            }
            else if (!busy.Contains(commit.GroupId))
            {
                // One call's commits are one unit (all or none): a call larger than the limit goes alone.
                if (batch.Count > 0 && rows + commit.Commits.Length > _options.MaxOffsetBatchSize)
                {
                    break;
                }

                waiting.Remove(node);
                batch.Add(commit);
                rows += commit.Commits.Length;
            }

            node = next;
        }

        return batch;
    }

    private async Task ExecuteAndReportAsync(List<PendingCommit> batch)
    {
        try
        {
            var rows = Flatten(batch);
            var alive = await ExecuteBatchAsync(rows).ConfigureAwait(false);

            // Counted before any caller is released, so a caller that has its result also sees its commit counted.
            if (!alive)
            {
                Statistics.RecordFenced(batch.Count);
                foreach (var commit in batch)
                {
                    commit.Fail(Fenced($"its commit of offsets of group '{commit.GroupId}'"));
                }

                return;
            }

            Statistics.RecordBatch(batch.Count, rows.Count);
            foreach (var commit in batch)
            {
                commit.Succeed();
            }
        }
        catch (Exception exception)
        {
            Statistics.RecordFailed();
            LogBatchFailed(_logger, batch.Count, exception);
            foreach (var commit in batch)
            {
                commit.Fail(OutcomeUnknown($"Committing offsets of group '{commit.GroupId}'", exception));
            }
        }
        finally
        {
            _inbox.Writer.TryWrite(new BatchCompleted(batch));
        }
    }

    /// <summary>
    /// The batch's rows, one per partition: PostgreSQL refuses an upsert that touches a row twice, so of two commits of
    /// one partition only the later is sent (later in the call, or in a later call, which arrived later).
    /// </summary>
    private static List<Row> Flatten(List<PendingCommit> batch)
    {
        var rows = new Dictionary<(string GroupId, OffsetKey Key), OffsetCommit>();
        foreach (var pending in batch)
        {
            foreach (var commit in pending.Commits)
            {
                rows[(pending.GroupId, commit.Key)] = commit;
            }
        }

        return [.. rows.Select(row => new Row(row.Key.GroupId, row.Value))];
    }

    /// <summary>Runs the batch's upsert; returns false when the writer was fenced (nothing written).</summary>
    private async Task<bool> ExecuteBatchAsync(List<Row> rows)
    {
        var groups = new string[rows.Count];
        var topicIds = new Guid[rows.Count];
        var partitions = new int[rows.Count];
        var topics = new string[rows.Count];
        var offsets = new long[rows.Count];
        var epochs = new int[rows.Count];
        var metadata = new string?[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var (group, commit) = rows[i];
            groups[i] = group;
            topicIds[i] = commit.TopicId;
            partitions[i] = commit.Partition;
            topics[i] = commit.Topic;
            offsets[i] = commit.Offset;
            epochs[i] = commit.LeaderEpoch;
            metadata[i] = commit.Metadata;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);

                // Both statements run in the batch's one implicit transaction (one round trip, one Sync).
                await using var command = new NpgsqlBatch(connection)
                {
                    BatchCommands = { new NpgsqlBatchCommand(BatchSettingsSql) },
                };
                var upsert = new NpgsqlBatchCommand(CommitSql);
                upsert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
                upsert.Parameters.Add(ArrayParameter(groups, NpgsqlDbType.Text));
                upsert.Parameters.Add(ArrayParameter(topicIds, NpgsqlDbType.Uuid));
                upsert.Parameters.Add(ArrayParameter(partitions, NpgsqlDbType.Integer));
                upsert.Parameters.Add(ArrayParameter(topics, NpgsqlDbType.Text));
                upsert.Parameters.Add(ArrayParameter(offsets, NpgsqlDbType.Bigint));
                upsert.Parameters.Add(ArrayParameter(epochs, NpgsqlDbType.Integer));
                upsert.Parameters.Add(ArrayParameter(metadata, NpgsqlDbType.Text));
                AddWriterParameters(upsert.Parameters);
                command.BatchCommands.Add(upsert);

                // Prepared once per physical connection (the pool keeps it; later calls find it and cost no round
                // trip): planning this statement took about as long as running it for a batch of 40 rows.
                await command.PrepareAsync().ConfigureAwait(false);

                bool alive;
                long written;
                await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
                {
                    await reader.NextResultAsync().ConfigureAwait(false);
                    if (!await reader.ReadAsync().ConfigureAwait(false))
                    {
                        throw new InvalidOperationException("The consumer_offsets batch statement returned no row.");
                    }

                    alive = reader.GetBoolean(0);
                    written = reader.GetInt64(1);

                    // Results count only once the reader is done: the server has then confirmed the implicit
                    // transaction's commit.
                    while (await reader.NextResultAsync().ConfigureAwait(false))
                    {
                    }
                }

                if (alive && written != rows.Count)
                {
                    throw new InvalidOperationException($"The consumer_offsets batch statement wrote {written} of {rows.Count} rows.");
                }

                return alive;
            }
            catch (PostgresException exception) when (attempt < MaxAttempts && IsTransient(exception))
            {
                // The statement was rolled back as a whole (another silo's batch for the same group, during a change
                // of owner, locked the rows in another order), so running it again cannot apply anything twice.
                LogBatchRetried(_logger, rows.Count, attempt, exception.SqlState);
            }
        }
    }

    private readonly record struct Row(string GroupId, OffsetCommit Commit);
}
