using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Runtime.Tests;

public sealed class ActivationSchedulerTests
{
    [Fact]
    public async Task Tasks_queued_from_many_threads_run_one_at_a_time_in_queue_order()
    {
        var scheduler = new ActivationScheduler();
        var factory = new TaskFactory(scheduler);
        var running = 0;
        var overlaps = 0;
        var order = new List<int>();
        var queued = new List<Task>();
        var gate = new Lock();

        // Tasks are queued under a lock so that queue order is known; they run on the pool, longer than one slice.
        var producers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 100; i++)
            {
                lock (gate)
                {
                    var n = queued.Count;
                    queued.Add(factory.StartNew(() =>
                    {
                        if (Interlocked.Increment(ref running) != 1)
                        {
                            Interlocked.Increment(ref overlaps);
                        }

                        Assert.Same(scheduler, TaskScheduler.Current);
                        order.Add(n);
                        Thread.SpinWait(200);
                        Interlocked.Decrement(ref running);
                    }));
                }
            }
        }));
        await Task.WhenAll(producers);
        List<Task> all;
        lock (gate)
        {
            all = [.. queued];
        }

        await Task.WhenAll(all);
        Assert.Equal(0, overlaps);
        Assert.Equal(Enumerable.Range(0, 400), order);
    }

    [Fact]
    public async Task Awaits_inside_a_task_continue_on_the_scheduler_without_overlapping_other_tasks()
    {
        var scheduler = new ActivationScheduler();
        var running = 0;
        var overlaps = 0;

        async Task TurnAsync()
        {
            for (var i = 0; i < 5; i++)
            {
                if (Interlocked.Increment(ref running) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                Assert.Same(scheduler, TaskScheduler.Current);
                Interlocked.Decrement(ref running);
                await Task.Yield();
            }
        }

        var turns = Enumerable.Range(0, 50)
            .Select(_ => Task.Factory.StartNew(TurnAsync, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler).Unwrap())
            .ToList();
        await Task.WhenAll(turns);
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public async Task A_task_waited_on_from_another_thread_is_not_run_inline_there()
    {
        var scheduler = new ActivationScheduler();
        using var release = new ManualResetEventSlim();
        var blocker = Task.Factory.StartNew(() => release.Wait(TimeSpan.FromSeconds(10)), CancellationToken.None, TaskCreationOptions.None, scheduler);
        var ranOn = -1;
        var second = Task.Factory.StartNew(() => ranOn = Environment.CurrentManagedThreadId, CancellationToken.None, TaskCreationOptions.None, scheduler);

        // Waiting would run the task inline on this thread if the scheduler allowed it, overlapping the blocker; the
        // blocking wait is the point of the test.
#pragma warning disable xUnit1031
        Assert.False(second.Wait(TimeSpan.FromMilliseconds(200)));
#pragma warning restore xUnit1031
        Assert.False(second.IsCompleted);
        release.Set();
        await second;
        await blocker;
        Assert.NotEqual(-1, ranOn);
    }
}
