namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    // All batching state lives on this one loop; batches report back through the inbox, so nothing here needs a lock.
    // A row's writes leave in arrival order: a write for a row that is in flight or already has writes waiting joins
    // the end of that row's queue, and when the row's batch finishes the head of its queue goes first.
    // Fences add one rule, so that this storage's batches never wait on each other's row locks (and so cannot
    // deadlock each other): a row is either written by one batch in flight or share-locked as a fence by any number
    // of them, never both. A write that would break the rule is deferred until a batch finishes.
    // Log records add another (group commit): at most MaxAppendingBatches batches that append records are between
    // their start and their commit. Every such batch holds the log's head row from its append to its commit, so
    // batches of one silo commit one after another anyway; holding the records that arrive meanwhile back lets them
    // share the next batch. A batch gives its connection and its slot back once committed (without its flush) and then
    // waits, holding only its rows, for a flush it shares with every batch that committed meanwhile (WhenDurableAsync). Batches grow with load instead of
    // queueing on the head row, and writes without records (most grain state) still go in parallel batches.
    private async Task RunWriterAsync()
    {
        var state = new WriterState { FreeAppendSlots = _options.MaxAppendingBatches };
        var inFlight = 0;   // batches on a connection: at most MaxConcurrentBatches
        var unfinished = 0; // those plus batches that committed and wait for their flush (they still hold their rows)
        var stopping = false;
        try
        {
            while (true)
            {
                while (_writeInbox.Reader.TryRead(out var message))
                {
                    switch (message)
                    {
                        case PendingWrite write:
                            write.Sequence = state.NextSequence++;
                            state.Ready.Enqueue(write);
                            break;
                        case AppendCommitted:
                            inFlight--;
                            state.FreeAppendSlots++;
                            state.ReleaseLogWaiting();
                            break;
                        case BatchCompleted completed:
                            unfinished--;
                            if (completed.StillOnConnection)
                            {
                                inFlight--;
                                if (completed.Appending)
                                {
                                    state.FreeAppendSlots++;
                                    state.ReleaseLogWaiting();
                                }
                            }

                            foreach (var write in completed.Writes)
                            {
                                state.Busy.Remove(write.Key);
                                foreach (var fence in FenceKeys(write))
                                {
                                    if (--state.FenceHolds[fence] == 0)
                                    {
                                        state.FenceHolds.Remove(fence);
                                    }
                                }

                                if (state.Blocked.ContainsKey(write.Key))
                                {
                                    state.Releasable.Enqueue(write.Key);
                                }
                            }

                            state.ReleaseDeferred();
                            break;
                        case StopSignal:
                            stopping = true;
                            break;
                    }
                }

                if (unfinished == 0)
                {
                    // Nothing holds a row or the log any more, so every deferred write can go (normally a finishing
                    // batch releases them).
                    state.ReleaseDeferred();
                    state.ReleaseLogWaiting();
                }

                if (inFlight < _options.MaxConcurrentBatches && (state.Ready.Count > 0 || state.Releasable.Count > 0))
                {
                    var batch = TakeBatch(state);
                    if (batch.Count > 0)
                    {
                        inFlight++;
                        unfinished++;
                        var appending = batch.Exists(write => write.Records.Length > 0);
                        if (appending)
                        {
                            state.FreeAppendSlots--;
                        }

                        _ = ExecuteAndReportAsync(batch, appending);
                    }

                    continue;
                }

                if (stopping && unfinished == 0 && state.Ready.Count == 0 && state.Blocked.Count == 0 && state.Releasable.Count == 0)
                {
                    break;
                }

                await _writeInbox.Reader.WaitToReadAsync().ConfigureAwait(false);
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

        FailLateRequests(_writeInbox);
    }

    private List<PendingWrite> TakeBatch(WriterState state)
    {
        var batch = new List<PendingWrite>(Math.Min(state.Ready.Count + state.Releasable.Count, _options.MaxBatchSize));
        while (batch.Count < _options.MaxBatchSize && state.Releasable.TryDequeue(out var key))
        {
            if (!state.Blocked.TryGetValue(key, out var queue) || state.Busy.Contains(key))
            {
                continue; // A stale entry: the row's writes were all abandoned, or it is in flight and will be released again.
            }

            while (queue.Count > 0 && queue.Peek().IsAbandoned)
            {
                queue.Dequeue(); // Cancelled before it was sent: dropped unwritten.
            }

            if (queue.Count == 0)
            {
                state.Blocked.Remove(key);
                continue;
            }

            var write = queue.Peek();
            if (write.Records.Length > 0 && state.FreeAppendSlots == 0)
            {
                state.LogWaiting.Add(key);
                continue;
            }

            if (!CanJoin(state, write, arriving: false))
            {
                state.Deferred.Add(key);
                continue;
            }

            queue.Dequeue();
            if (queue.Count == 0)
            {
                state.Blocked.Remove(key);
            }

            Join(state, batch, write);
        }

        while (batch.Count < _options.MaxBatchSize && state.Ready.TryDequeue(out var write))
        {
            if (write.IsAbandoned)
            {
                continue; // Cancelled before it was sent: dropped unwritten.
            }

            // One statement cannot apply two writes to one row in order, and two batches on one row would contend
            // for its lock; so the write waits for the row's earlier writes.
            var mustWait = state.Busy.Contains(write.Key) || state.Blocked.ContainsKey(write.Key);
            var waitsForLog = !mustWait && write.Records.Length > 0 && state.FreeAppendSlots == 0;
            if (mustWait || waitsForLog || !CanJoin(state, write, arriving: true))
            {
                if (!state.Blocked.TryGetValue(write.Key, out var queue))
                {
                    state.Blocked[write.Key] = queue = new Queue<PendingWrite>();
                }

                queue.Enqueue(write);
                if (waitsForLog)
                {
                    state.LogWaiting.Add(write.Key);
                }
                else if (!mustWait)
                {
                    state.Deferred.Add(write.Key);
                }

                continue;
            }

            Join(state, batch, write);
        }

        return batch;
    }

    /// <summary>
    /// Whether <paramref name="write"/> may join the batch being built without its rows being locked by another batch
    /// of this storage: its own row is nobody's fence, and none of its fence rows is being written. An arriving write
    /// also lets a waiting write to one of its fence rows go first (a new controller epoch must not starve behind a
    /// stream of writes fenced on the old one); a write already waiting does not, so two waiting writes fenced on each
    /// other's rows cannot wait for each other forever.
    /// </summary>
    private static bool CanJoin(WriterState state, PendingWrite write, bool arriving)
    {
        if (state.FenceHolds.ContainsKey(write.Key))
        {
            return false;
        }

        foreach (var fence in FenceKeys(write))
        {
            if (state.Busy.Contains(fence) || (arriving && state.Blocked.ContainsKey(fence)))
            {
                return false;
            }
        }

        return true;
    }

    private static void Join(WriterState state, List<PendingWrite> batch, PendingWrite write)
    {
        state.Busy.Add(write.Key);
        foreach (var fence in FenceKeys(write))
        {
            state.FenceHolds[fence] = state.FenceHolds.GetValueOrDefault(fence) + 1;
        }

        batch.Add(write);
    }

    /// <summary>The distinct rows a write fences on, other than its own (which it locks for update anyway).</summary>
    private static RowKey[] FenceKeys(PendingWrite write) => write.FenceRows;

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

        /// <summary>Fence rows of the batches in flight (and the one being built), with how many batches hold each.</summary>
        public Dictionary<RowKey, int> FenceHolds { get; } = [];

        /// <summary>Rows whose next write waits for another batch to release its rows (see <see cref="CanJoin"/>).</summary>
        public HashSet<RowKey> Deferred { get; } = [];

        /// <summary>
        /// How many more batches that append log records may start (<see cref="PostgresStorageOptions.MaxAppendingBatches"/>
        /// in all). A batch holds its slot until it commits, not through its flush.
        /// </summary>
        public int FreeAppendSlots { get; set; }

        /// <summary>Rows whose next write appends records and waits for a batch in flight that appends to finish.</summary>
        public HashSet<RowKey> LogWaiting { get; } = [];

        public long NextSequence { get; set; }

        /// <summary>Lets every deferred write be reconsidered, oldest first.</summary>
        public void ReleaseDeferred() => Release(Deferred);

        /// <summary>Lets every write waiting for the log be reconsidered, oldest first: they make up the next batch that appends.</summary>
        public void ReleaseLogWaiting() => Release(LogWaiting);

        private void Release(HashSet<RowKey> rows)
        {
            if (rows.Count == 0)
            {
                return;
            }

            foreach (var key in rows
                .Where(Blocked.ContainsKey)
                .OrderBy(key => Blocked[key].Peek().Sequence))
            {
                Releasable.Enqueue(key);
            }

            rows.Clear();
        }
    }
}
