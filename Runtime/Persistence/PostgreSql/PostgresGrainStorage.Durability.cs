using Npgsql;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    /// <summary>The durable-frontier row of the shared flush (<see cref="WhenDurableAsync"/>).</summary>
    private const int FlushSlot = 0;

    private readonly Lock _flushLock = new();

    /// <summary>The flush that batches committing now will share: it starts once the one in flight is done.</summary>
    private TaskCompletionSource? _nextFlush;

    private bool _flushing;

    /// <summary>
    /// Completes once everything this storage's batches committed before the call is durable and readable: a
    /// durability transaction (DurableSql) that starts after the call, shared by every batch that committed meanwhile.
    /// At most one such transaction of this storage is in flight, so a storage pays one flush per flush time whatever
    /// its write rate, and batches that commit during a flush share the next one (group commit at the flush, where
    /// the appending batches above it are group commit at the head row). Fails, for every batch waiting on it, when
    /// the transaction fails: those batches committed, so each of their writes has an unknown outcome.
    /// </summary>
    private Task WhenDurableAsync()
    {
        lock (_flushLock)
        {
            var next = _nextFlush ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_flushing)
            {
                _flushing = true;
                _ = Task.Run(FlushAsync);
            }

            return next.Task;
        }
    }

    private async Task FlushAsync()
    {
        while (true)
        {
            TaskCompletionSource round;
            lock (_flushLock)
            {
                if (_nextFlush is null)
                {
                    _flushing = false;
                    return;
                }

                round = _nextFlush;
                _nextFlush = null;
            }

            try
            {
                await MakeDurableAsync(FlushSlot, onDurable: () =>
                {
                    Statistics.RecordFlush();
                    round.TrySetResult();
                }).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                round.TrySetException(new NpgsqlException(
                    $"The batch committed, but making it durable failed: {exception.Message} Its writes have an unknown outcome.", exception));
            }
        }
    }

    /// <summary>
    /// Makes every record committed so far durable and readable (DurableSql), under this writer's row
    /// <paramref name="slot"/>; then runs <paramref name="onDurable"/>, and wakes the readers (NotifySql, committed
    /// without a flush of its own) only when the frontier moved. Most seconds the keeper finds the frontier at the head
    /// and writes nothing; a shared flush finds it there when another writer's flush covered its batches. The keeper and
    /// the shared flush use rows of their own, so they never wait on each other.
    /// </summary>
    private async Task MakeDurableAsync(int slot, Action? onDurable = null)
    {
        await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
        bool moved;
        await using (var durable = new NpgsqlBatch(connection) { BatchCommands = { DurableCommand(slot) } })
        {
            // Prepared, as the wake-up below and the log's read: each runs hundreds of times a second, and unprepared
            // PostgreSQL spent more time planning them than running them (BENCHMARKS.md, 2026-11-23). Once per
            // physical connection; the pool keeps it.
            await durable.PrepareAsync().ConfigureAwait(false);
            moved = await durable.ExecuteScalarAsync().ConfigureAwait(false) is long;
        }

        onDurable?.Invoke();
        if (!moved)
        {
            return;
        }

        await using var notify = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(AsynchronousCommitSql),
                NotifyCommand(),
            },
        };
        try
        {
            await notify.PrepareAsync().ConfigureAwait(false);
            await notify.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            // The records are durable already; readers that miss the wake-up find them on their next poll (at most a
            // second later), so this is no reason to fail any write.
            LogNotifyFailed(_logger, exception);
        }
    }
}
