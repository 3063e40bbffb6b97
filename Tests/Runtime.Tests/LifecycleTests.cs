using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public async Task An_idle_grain_is_collected_after_the_collection_age_and_a_busy_one_is_not()
    {
        await using var runtime = await TestRuntime.StartAsync(o =>
        {
            o.CollectionAge = TimeSpan.FromMinutes(10);
            o.CollectionQuantum = TimeSpan.FromMinutes(1);
        });
        var idle = runtime.Grains.GetGrain<ILifecycleGrain>("idle");
        var busy = runtime.Grains.GetGrain<ILifecycleGrain>("busy");
        var firstIdleInstance = await idle.PingAsync();
        await busy.PingAsync();

        for (var minute = 0; minute < 9; minute++)
        {
            runtime.Time.Advance(TimeSpan.FromMinutes(1));
            await busy.PingAsync();
        }

        Assert.Equal(0, runtime.Probe.Count("deactivate:idle:Idle"));
        runtime.Time.Advance(TimeSpan.FromMinutes(1));
        await busy.PingAsync();
        await Eventually.Until(() => runtime.Probe.Count("deactivate:idle:Idle") == 1, "the idle grain is deactivated as idle");
        await Eventually.Until(() => runtime.Catalog.Count == 1, "only the busy grain stays activated");
        Assert.Equal(0, runtime.Probe.Count("deactivate:busy:Idle"));

        // The next call activates the idle grain afresh.
        Assert.NotEqual(firstIdleInstance, await idle.PingAsync());
        Assert.Equal(2, runtime.Probe.Count("activate:idle"));
    }

    [Fact]
    public async Task A_grain_timer_ticks_as_a_turn_and_stops_when_disposed()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("ticking");
        await grain.StartTimerAsync(TimeSpan.FromSeconds(1));

        for (var expected = 1; expected <= 3; expected++)
        {
            runtime.Time.Advance(TimeSpan.FromSeconds(1));
            var target = expected;
            await Eventually.Until(() => runtime.Probe.Count("tick:ticking") == target, $"tick {target} has run");
            Assert.Equal(target, await grain.TickCountAsync());
        }

        await grain.StopTimerAsync();
        runtime.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(3, await grain.TickCountAsync());
        Assert.Equal(0, runtime.Probe.Count("timer-overlapped-a-call"));
    }

    [Fact]
    public async Task Timer_ticks_do_not_keep_a_grain_alive_and_stop_with_the_activation()
    {
        await using var runtime = await TestRuntime.StartAsync(o =>
        {
            o.CollectionAge = TimeSpan.FromMinutes(2);
            o.CollectionQuantum = TimeSpan.FromMinutes(1);
        });
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("ticking-idle");
        await grain.StartTimerAsync(TimeSpan.FromSeconds(30));

        runtime.Time.Advance(TimeSpan.FromMinutes(3));
        await Eventually.Until(() => runtime.Probe.Count("deactivate:ticking-idle:Idle") == 1, "the grain is collected despite its timer");
        var ticks = runtime.Probe.Count("tick:ticking-idle");
        runtime.Time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(ticks, runtime.Probe.Count("tick:ticking-idle"));
    }

    [Fact]
    public async Task A_grain_may_ask_to_be_deactivated_and_queued_calls_reach_its_next_activation()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("leaving");
        var first = await grain.PingAsync();

        var leave = grain.DeactivateAsync();
        var pings = Enumerable.Range(0, 20).Select(_ => grain.PingAsync()).ToArray();
        await leave;
        var instances = await Task.WhenAll(pings);

        Assert.Equal(1, runtime.Probe.Count("deactivate:leaving:Requested"));
        Assert.All(instances, i => Assert.NotEqual(first, i));
        Assert.Single(instances.Distinct());
    }

    [Fact]
    public async Task A_failed_activation_fails_the_call_and_the_next_call_activates_again()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("fail-once");

        var error = await Assert.ThrowsAsync<GrainActivationException>(() => grain.PingAsync());
        Assert.Contains("activation failed on purpose", error.Message, StringComparison.Ordinal);
        Assert.True(error.IsRetryable);

        await grain.PingAsync();
        Assert.Equal(2, runtime.Probe.Count("activate:fail-once"));
    }

    [Fact]
    public async Task An_activation_that_takes_too_long_times_out()
    {
        await using var runtime = await TestRuntime.StartAsync(o => o.ActivationTimeout = TimeSpan.FromSeconds(5));
        var call = runtime.Grains.GetGrain<ILifecycleGrain>("hang-activate-1").PingAsync();
        await Eventually.Until(() => runtime.Probe.Count("activate:hang-activate-1") == 1, "activation has started");

        runtime.Time.Advance(TimeSpan.FromSeconds(5));
        var error = await Assert.ThrowsAsync<GrainActivationException>(() => call);
        Assert.Contains("ActivationTimeout", error.Message, StringComparison.Ordinal);
        await Eventually.Until(() => runtime.Catalog.Count == 0, "the failed activation is dropped");
    }

    [Fact]
    public async Task A_deactivation_that_takes_too_long_is_dropped_after_the_deactivation_timeout()
    {
        await using var runtime = await TestRuntime.StartAsync(o => o.DeactivationTimeout = TimeSpan.FromSeconds(5));
        var grain = runtime.Grains.GetGrain<ILifecycleGrain>("hang-deactivate-1");
        var first = await grain.PingAsync();

        await grain.DeactivateAsync();
        await Eventually.Until(() => runtime.Probe.Count("deactivate:hang-deactivate-1:Requested") == 1, "deactivation has started");
        var next = grain.PingAsync();
        Assert.False(next.IsCompleted);

        runtime.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.NotEqual(first, await next);
    }
}
