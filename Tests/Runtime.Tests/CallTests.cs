using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

public sealed class CallTests
{
    [Fact]
    public async Task A_grain_may_call_other_grains_along_a_chain()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var result = await runtime.Grains.GetGrain<IChainGrain>("a").CallAlongAsync(["b", "c", "d"]);
        Assert.Equal("a>b>c>d", result);
    }

    [Fact]
    public async Task A_call_cycle_fails_fast_and_names_the_cycle()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var error = await Assert.ThrowsAsync<GrainCallCycleException>(
            () => runtime.Grains.GetGrain<IChainGrain>("a").CallAlongAsync(["b", "a"]));

        Assert.Equal(["chain/a", "chain/b", "chain/a"], error.Cycle.Select(g => g.ToString()));
        Assert.Contains("chain/a → chain/b → chain/a", error.Message, StringComparison.Ordinal);

        // The grains are still usable afterwards.
        Assert.Equal("a", await runtime.Grains.GetGrain<IChainGrain>("a").NameAsync());
    }

    [Fact]
    public async Task A_grain_calling_itself_fails_fast()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var error = await Assert.ThrowsAsync<GrainCallCycleException>(
            () => runtime.Grains.GetGrain<IChainGrain>("self").CallAlongAsync(["self"]));
        Assert.Equal(["chain/self", "chain/self"], error.Cycle.Select(g => g.ToString()));
    }

    [Fact]
    public async Task A_call_that_runs_past_the_call_timeout_fails_and_cancels_the_grains_token()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ISlowGrain>("slow");
        Assert.Equal("pong", await grain.PingAsync());

        var call = grain.WaitForeverAsync(CancellationToken.None);
        await Eventually.Until(() => runtime.Probe.Count("waiting:slow") == 1, "the call is running inside the grain");
        runtime.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(call.IsCompleted);

        runtime.Time.Advance(TimeSpan.FromSeconds(1));
        var error = await Assert.ThrowsAsync<GrainCallTimeoutException>(() => call);
        Assert.Contains("30 s", error.Message, StringComparison.Ordinal);
        await Eventually.Until(() => runtime.Probe.Count("cancelled:slow") == 1, "the grain saw its token cancelled");

        // The turn ended with the cancellation, so the grain takes calls again.
        Assert.Equal("pong", await grain.PingAsync());
    }

    [Fact]
    public async Task A_caller_cancelling_cancels_the_call()
    {
        await using var runtime = await TestRuntime.StartAsync();
        var grain = runtime.Grains.GetGrain<ISlowGrain>("cancel-me");
        using var cancellation = new CancellationTokenSource();

        var call = grain.WaitForeverAsync(cancellation.Token);
        await Eventually.Until(() => runtime.Probe.Count("waiting:cancel-me") == 1, "the call is running inside the grain");
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Eventually.Until(() => runtime.Probe.Count("cancelled:cancel-me") == 1, "the grain saw the caller's cancellation");
        Assert.Equal("pong", await grain.PingAsync());
    }

    [Fact]
    public void A_grain_interface_with_a_synchronous_method_is_rejected_with_a_clear_message()
    {
        var registry = new GrainTypeRegistry();
        var error = Assert.Throws<InvalidOperationException>(() => registry.GetInterface(typeof(IBadGrain)));
        Assert.Contains("must return Task", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Grain_type_names_come_from_the_interface_name()
    {
        Assert.Equal("consumer-group", GrainInterface.DefaultGrainType(typeof(IConsumerGroupGrain)));
        Assert.Equal("broker", GrainInterface.DefaultGrainType(typeof(IBrokerGrain)));
    }

    public interface IBadGrain : IGrainWithStringKey
    {
        int Compute();
    }

    public interface IConsumerGroupGrain : IGrainWithStringKey;

    public interface IBrokerGrain : IGrainWithStringKey;
}
