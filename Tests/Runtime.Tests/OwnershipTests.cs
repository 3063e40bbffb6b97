using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

/// <summary>What the runtime does when its silo may not act as an owner, and for grains that keep truth in memory.</summary>
public sealed class OwnershipTests
{
    [Fact]
    public async Task Timer_ticks_do_nothing_while_the_silo_is_not_serving_and_resume_when_it_is()
    {
        var membership = new SwitchableMembership();
        await using var runtime = await TestRuntime.StartAsync(membership: membership);
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("paused");
        await grain.StartTimerAsync(TimeSpan.FromSeconds(1));
        runtime.Time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.Until(() => runtime.Probe.Count("tick:paused") == 1, "the first tick has run");

        // Declared dead, cut off or paused past its lease: the grain's memory may belong to another owner now.
        membership.Active = false;
        for (var i = 0; i < 3; i++)
        {
            runtime.Time.Advance(TimeSpan.FromSeconds(1));

            // The call queues behind the tick the clock just fired, so it returns after that tick's turn.
            Assert.Equal(1, await grain.TickCountAsync());
        }

        membership.Active = true;
        runtime.Time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.Until(() => runtime.Probe.Count("tick:paused") == 2, "ticks run again once the silo serves");
    }

    [Fact]
    public async Task A_grain_keeping_truth_in_memory_activates_only_after_dead_silos_leases_ran_out()
    {
        var membership = new SwitchableMembership();
        await using var runtime = await TestRuntime.StartAsync(membership: membership);

        var ping = runtime.Grains.GetGrain<ISessionGrain>("broker-1").PingAsync();
        await Eventually.Until(() => membership.LeaseWaits == 1, "the activation asks whether a dead silo may still own the grain");
        Assert.False(ping.IsCompleted);
        Assert.Equal(0, runtime.Probe.Count("activate:broker-1"));

        // Grains without truth in memory do not wait.
        Assert.Equal(0, await runtime.Grains.GetGrain<ICounterGrain>("c").GetViolationsAsync());

        membership.LeasesRanOut.SetResult();
        Assert.Equal("broker-1", await ping);
        Assert.Equal(1, runtime.Probe.Count("activate:broker-1"));
    }

    private sealed class SwitchableMembership : IClusterMembership
    {
        private int _leaseWaits;

        public volatile bool Active = true;

        public TaskCompletionSource LeasesRanOut { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int LeaseWaits => Volatile.Read(ref _leaseWaits);

        public SiloAddress? Self { get; } = new("http://127.0.0.1:1", 1);

        public MembershipView CurrentView => MembershipView.Empty;

        public bool IsActive => Active;

        public event Action<MembershipView>? ViewChanged
        {
            add { }
            remove { }
        }

        public Task<MembershipView> RefreshAsync(CancellationToken cancellationToken = default) => Task.FromResult(CurrentView);

        public Task WaitForDeadSilosLeasesAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _leaseWaits);
            return LeasesRanOut.Task.WaitAsync(cancellationToken);
        }
    }
}
