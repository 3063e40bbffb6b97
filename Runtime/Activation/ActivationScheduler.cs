namespace OrleansMeta.Runtime.Activation;

/// <summary>
/// Runs an activation's tasks one at a time, in the order they were queued, on the thread pool: what the exclusive
/// scheduler of a <see cref="ConcurrentExclusiveSchedulerPair"/> gives, at a fraction of its size. A failover activates
/// tens of thousands of grains at once, and each pair carries two task queues and a <see cref="ThreadLocal{T}"/> (a
/// finalizable object, with a slot per thread that ever ran it): measured, most of the garbage the collector had to
/// copy while partitions were re-led.
/// </summary>
/// <remarks>
/// A task runs inline (on the thread that asks) only when that thread is already running this scheduler's tasks, so
/// two of its tasks never run at once. After <see cref="MaxTasksPerSlice"/> tasks in a row the scheduler gives its
/// thread back and queues itself again, so a busy activation cannot hold a pool thread for ever.
/// </remarks>
internal sealed class ActivationScheduler : TaskScheduler, IThreadPoolWorkItem
{
    private const int MaxTasksPerSlice = 64;

    [ThreadStatic]
    private static ActivationScheduler? t_running;

    private readonly Lock _lock = new();
    private readonly Queue<Task> _tasks = new(2);
    private bool _scheduled;

    public override int MaximumConcurrencyLevel => 1;

    protected override void QueueTask(Task task)
    {
        lock (_lock)
        {
            _tasks.Enqueue(task);
            if (_scheduled)
            {
                return;
            }

            _scheduled = true;
        }

        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        var outer = t_running;
        t_running = this;
        try
        {
            for (var i = 0; i < MaxTasksPerSlice; i++)
            {
                Task? task;
                lock (_lock)
                {
                    if (!_tasks.TryDequeue(out task))
                    {
                        _scheduled = false;
                        return;
                    }
                }

                TryExecuteTask(task);
            }
        }
        finally
        {
            t_running = outer;
        }

        // The slice is used up and tasks may remain: stay scheduled and let other work run first.
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued)
        => t_running == this && (!taskWasPreviouslyQueued || TryDequeue(task)) && TryExecuteTask(task);

    protected override bool TryDequeue(Task task)
    {
        lock (_lock)
        {
            if (!_tasks.Contains(task))
            {
                return false;
            }

            var kept = _tasks.Where(t => t != task).ToList();
            _tasks.Clear();
            foreach (var t in kept)
            {
                _tasks.Enqueue(t);
            }

            return true;
        }
    }

    protected override IEnumerable<Task> GetScheduledTasks()
    {
        lock (_lock)
        {
            return [.. _tasks];
        }
    }
}
