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
                await FlushOnceAsync().ConfigureAwait(false);
                Statistics.RecordFlush();
                round.SetResult();
            }
            catch (Exception exception)
            {
                round.SetException(new NpgsqlException(
                    $"The batch committed, but making it durable failed: {exception.Message} Its writes have an unknown outcome.", exception));
            }
        }
    }

    /// <summary>
    /// The durability transaction and the readers' wake-up (NotifySql, committed without a flush of its own), one
    /// after the other in one round trip.
    /// </summary>
    private async Task FlushOnceAsync()
    {
        await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
        await using var flush = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("BEGIN"),
                DurableCommand(FlushSlot),
                new NpgsqlBatchCommand("COMMIT"),
                new NpgsqlBatchCommand("BEGIN"),
                new NpgsqlBatchCommand(AsynchronousCommitSql),
                NotifyCommand(),
                new NpgsqlBatchCommand("COMMIT"),
            },
        };
        await flush.ExecuteNonQueryAsync().ConfigureAwait(false);
    }
}
