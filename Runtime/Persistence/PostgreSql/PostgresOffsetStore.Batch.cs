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
            var groups = Flatten(batch);
            var compacted = DueForCompaction(groups);
            var (alive, kept) = await ExecuteBatchAsync(groups, compacted).ConfigureAwait(false);

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

            foreach (var group in groups)
            {
                LogOf(group.GroupId).Appended(group.Commits.Count);
            }

            for (var i = 0; i < compacted.Count; i++)
            {
                LogOf(compacted[i]).Rewritten(kept[i]);
            }

            Statistics.RecordBatch(batch.Count, groups.Sum(group => group.Commits.Count), compacted.Count);
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
    /// The batch's entries, one row per group and one entry per partition: of two commits of one partition in the batch
    /// only the later is sent (later in the call, or in a later call, which arrived later), since entries of one row
    /// share its number.
    /// </summary>
    private static List<GroupRow> Flatten(List<PendingCommit> batch)
    {
        var rows = new List<GroupRow>();
        var byGroup = new Dictionary<string, GroupRow>(StringComparer.Ordinal);
        foreach (var pending in batch)
        {
            if (!byGroup.TryGetValue(pending.GroupId, out var row))
            {
                byGroup[pending.GroupId] = row = new GroupRow(pending.GroupId, new Dictionary<OffsetKey, OffsetCommit>(pending.Commits.Length));
                rows.Add(row);
            }

            foreach (var commit in pending.Commits)
            {
                row.Commits[commit.Key] = commit;
            }
        }

        return rows;
    }

    /// <summary>The groups of the batch whose rows will hold enough superseded entries, once its own are appended, to be
    /// rewritten in its transaction (<see cref="GroupLog.IsDue"/>).</summary>
    private List<string> DueForCompaction(List<GroupRow> groups)
    {
        var due = new List<string>();
        foreach (var group in groups)
        {
            if (LogOf(group.GroupId).IsDue(group.Commits.Count))
            {
                due.Add(group.GroupId);
            }
        }

        return due;
    }

    /// <summary>
    /// Appends the batch's rows and rewrites the groups due for compaction, in one transaction; returns false when the
    /// writer was fenced (nothing written), and otherwise the partitions each compacted group kept.
    /// </summary>
    private async Task<(bool Alive, long[] Kept)> ExecuteBatchAsync(List<GroupRow> groups, List<string> compacted)
    {
        var entries = groups.Sum(group => group.Commits.Count);
        var groupIds = new string[groups.Count];
        var firsts = new int[groups.Count];
        var lasts = new int[groups.Count];
        var topicIds = new Guid[entries];
        var partitions = new int[entries];
        var topics = new string[entries];
        var offsets = new long[entries];
        var epochs = new int[entries];
        var metadata = new string?[entries];
        var anyMetadata = false;
        var next = 0;
        for (var g = 0; g < groups.Count; g++)
        {
            groupIds[g] = groups[g].GroupId;
            firsts[g] = next + 1; // PostgreSQL's arrays start at 1.
            foreach (var commit in groups[g].Commits.Values)
            {
                topicIds[next] = commit.TopicId;
                partitions[next] = commit.Partition;
                topics[next] = commit.Topic;
                offsets[next] = commit.Offset;
                epochs[next] = commit.LeaderEpoch;
                metadata[next] = commit.Metadata;
                anyMetadata |= commit.Metadata is not null;
                next++;
            }

            lasts[g] = next;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);

                // Every statement runs in the batch's one implicit transaction (one round trip, one Sync).
                await using var command = new NpgsqlBatch(connection)
                {
                    BatchCommands = { new NpgsqlBatchCommand(BatchSettingsSql) },
                };
                var append = new NpgsqlBatchCommand(CommitSql);
                append.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
                append.Parameters.Add(ArrayParameter(groupIds, NpgsqlDbType.Text));
                append.Parameters.Add(ArrayParameter(firsts, NpgsqlDbType.Integer));
                append.Parameters.Add(ArrayParameter(lasts, NpgsqlDbType.Integer));
                append.Parameters.Add(ArrayParameter(topicIds, NpgsqlDbType.Uuid));
                append.Parameters.Add(ArrayParameter(topics, NpgsqlDbType.Text));
                append.Parameters.Add(ArrayParameter(partitions, NpgsqlDbType.Integer));
                append.Parameters.Add(ArrayParameter(offsets, NpgsqlDbType.Bigint));
                append.Parameters.Add(ArrayParameter(epochs, NpgsqlDbType.Integer));
                append.Parameters.Add(anyMetadata
                    ? ArrayParameter(metadata, NpgsqlDbType.Text)
                    : new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = DBNull.Value });
                AddWriterParameters(append.Parameters);
                command.BatchCommands.Add(append);
                if (compacted.Count > 0)
                {
                    command.BatchCommands.Add(RewriteCommand([.. compacted], removed: null, removeAll: false));
                }

                // Prepared once per physical connection (the pool keeps it; later calls find it and cost no round
                // trip): planning these statements took about as long as running them for a small batch.
                await command.PrepareAsync().ConfigureAwait(false);

                bool alive;
                var kept = new long[compacted.Count];
                await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
                {
                    await reader.NextResultAsync().ConfigureAwait(false);
                    if (!await reader.ReadAsync().ConfigureAwait(false))
                    {
                        throw new InvalidOperationException("The consumer_offset_log append returned no row.");
                    }

                    alive = reader.GetBoolean(0);
                    var appended = reader.GetInt64(1);
                    if (alive && appended != groups.Count)
                    {
                        throw new InvalidOperationException($"The consumer_offset_log append wrote {appended} rows for {groups.Count} groups.");
                    }

                    if (compacted.Count > 0 && await reader.NextResultAsync().ConfigureAwait(false))
                    {
                        for (var i = 0; await reader.ReadAsync().ConfigureAwait(false); i++)
                        {
                            kept[i] = reader.GetInt64(2);
                        }
                    }

                    // Results count only once the reader is done: the server has then confirmed the implicit
                    // transaction's commit.
                    while (await reader.NextResultAsync().ConfigureAwait(false))
                    {
                    }
                }

                return (alive, kept);
            }
            catch (PostgresException exception) when (attempt < MaxAttempts && IsTransient(exception))
            {
                // The transaction was rolled back as a whole (another silo's compaction of the same group, during a
                // change of owner, locked its rows in another order), so running it again cannot apply anything twice.
                LogBatchRetried(_logger, entries, attempt, exception.SqlState);
            }
        }
    }

    /// <summary>One group's row of a batch: its partitions' newest commits.</summary>
    private sealed record GroupRow(string GroupId, Dictionary<OffsetKey, OffsetCommit> Commits);
}
