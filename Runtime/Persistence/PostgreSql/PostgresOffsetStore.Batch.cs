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
            var alive = await ExecuteBatchAsync(groups).ConfigureAwait(false);

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

            Statistics.RecordBatch(batch.Count, groups.Sum(group => group.Commits.Count));
            var due = new List<string>();
            foreach (var group in groups)
            {
                var log = LogOf(group.GroupId);
                log.Appended(group.Commits.Count);
                if (log.IsDue)
                {
                    due.Add(group.GroupId);
                }
            }

            var compaction = due.Count > 0 ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
            foreach (var groupId in due)
            {
                LogOf(groupId).Compaction = compaction!.Task;
            }

            foreach (var commit in batch)
            {
                commit.Succeed();
            }

            if (compaction is not null)
            {
                // After the callers have their answers (a compaction changes no offset) and before the batch's groups
                // may go again, so a group's next commit, read or delete never overlaps its compaction.
                try
                {
                    await CompactAsync(due).ConfigureAwait(false);
                }
                finally
                {
                    compaction.SetResult();
                }
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

    /// <summary>Rewrites each of <paramref name="groupIds"/>' rows as one; a failure is logged and the next batch of the
    /// group tries again.</summary>
    private async Task CompactAsync(List<string> groupIds)
    {
        try
        {
            var outcome = await RewriteAsync(groupIds, removed: null, removeAll: false, durable: false, CancellationToken.None).ConfigureAwait(false);
            if (outcome is null)
            {
                return; // This silo was declared dead: the groups' new owners compact them.
            }

            foreach (var (groupId, (kept, _)) in outcome)
            {
                LogOf(groupId).Rewritten(kept);
            }

            Statistics.RecordCompactions(groupIds.Count);
        }
        catch (Exception exception)
        {
            LogCompactionFailed(_logger, groupIds.Count, exception);
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
                byGroup[pending.GroupId] = row = new GroupRow(pending.GroupId, new Dictionary<OffsetKey, LogEntry>(pending.Commits.Length));
                rows.Add(row);
            }

            foreach (var commit in pending.Commits)
            {
                row.Commits[commit.Key] = LogEntry.Of(commit);
            }
        }

        return rows;
    }

    /// <summary>Appends the batch's rows; returns false when the writer was fenced (nothing written).</summary>
    private async Task<bool> ExecuteBatchAsync(List<GroupRow> groups)
    {
        var groupIds = new string[groups.Count];
        var rows = new byte[groups.Count][];
        for (var g = 0; g < groups.Count; g++)
        {
            groupIds[g] = groups[g].GroupId;
            rows[g] = OffsetLogEncoding.Encode(groups[g].Commits.Values, numbers: false);
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
                var append = new NpgsqlBatchCommand(CommitSql);
                append.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
                append.Parameters.Add(ArrayParameter(groupIds, NpgsqlDbType.Text));
                append.Parameters.Add(ArrayParameter(rows, NpgsqlDbType.Bytea));
                AddWriterParameters(append.Parameters);
                command.BatchCommands.Add(append);

                // Prepared once per physical connection (the pool keeps it; later calls find it and cost no round
                // trip).
                await command.PrepareAsync().ConfigureAwait(false);

                bool alive;
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

                    // Results count only once the reader is done: the server has then confirmed the implicit
                    // transaction's commit.
                    while (await reader.NextResultAsync().ConfigureAwait(false))
                    {
                    }
                }

                return alive;
            }
            catch (PostgresException exception) when (attempt < MaxAttempts && IsTransient(exception))
            {
                // The statement was rolled back as a whole, so running it again cannot apply anything twice.
                LogBatchRetried(_logger, groups.Count, attempt, exception.SqlState);
            }
        }
    }

    /// <summary>One group's row of a batch: its partitions' newest commits.</summary>
    private sealed record GroupRow(string GroupId, Dictionary<OffsetKey, LogEntry> Commits);
}
