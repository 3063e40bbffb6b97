using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

public sealed class TurnTests
{
    [Fact]
    public async Task Calls_to_one_grain_never_overlap_under_heavy_contention()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ICounterGrain>("contended");

        // 64 concurrent callers, 4,000 read-modify-write calls with awaits inside each turn.
        var callers = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 4000 / 64 + 1; i++)
            {
                await grain.IncrementAsync();
            }
        }));
        await Task.WhenAll(callers);

        var expected = 64 * (4000 / 64 + 1);
        Assert.Equal(expected + 1, await grain.IncrementAsync());
        Assert.Equal(0, await grain.GetViolationsAsync());
    }

    [Fact]
    public async Task Many_grains_run_in_parallel_and_each_keeps_its_own_state()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var work = Enumerable.Range(0, 200).Select(async i =>
        {
            var grain = runtime.Grains.GetGrain<ICounterGrain>($"g{i}");
            for (var n = 0; n < 20; n++)
            {
                await grain.IncrementAsync();
            }

            return await grain.IncrementAsync();
        });

        Assert.All(await Task.WhenAll(work), value => Assert.Equal(21, value));
        Assert.Equal(200, runtime.Catalog.Count);
    }

    [Fact]
    public async Task Read_only_calls_interleave_with_each_other()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ICounterGrain>("readers");

        var first = grain.PeekAsync("readers-gate");
        var second = grain.PeekAsync("readers-gate");
        await Eventually.Until(() => runtime.Probe.Count("peek-in:2") == 1, "both read-only calls are inside the grain at once");

        runtime.Probe.Gate("readers-gate").SetResult();
        await Task.WhenAll(first, second);
        Assert.Equal(2, await grain.GetMaxReadersAsync());
    }

    [Fact]
    public async Task An_exclusive_call_waits_for_running_read_only_calls_and_blocks_later_ones()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ICounterGrain>("mixed");

        var reader = grain.PeekAsync("mixed-gate-1");
        await Eventually.Until(() => runtime.Probe.Count("peek-in:1") == 1, "the first reader is inside");
        var exclusive = grain.ExclusiveAsync();
        var laterReader = grain.PeekAsync("mixed-gate-2");

        // Release the first reader: the exclusive call runs alone, then the later reader.
        runtime.Probe.Gate("mixed-gate-1").SetResult();
        await exclusive;
        runtime.Probe.Gate("mixed-gate-2").SetResult();
        await Task.WhenAll(reader, laterReader);

        Assert.Equal(["peek-in:1", "exclusive:0", "peek-in:1"], runtime.Probe.Events);
        Assert.Equal(1, await grain.GetMaxReadersAsync());
    }
}
