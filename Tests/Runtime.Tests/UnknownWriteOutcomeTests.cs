using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Tests.Infrastructure;

namespace OrleansMeta.Runtime.Tests;

/// <summary>
/// A write whose outcome is unknown (a timeout or a lost connection around the commit) may or may not have been
/// committed. Whichever it was, the activation must not answer again from memory that differs from storage.
/// </summary>
public sealed class UnknownWriteOutcomeTests
{
    [Fact]
    public async Task A_write_that_committed_but_whose_answer_was_lost_is_reloaded_before_the_next_call()
    {
        var storage = new FaultyStorage(new InMemoryGrainStorage());
        await using var runtime = await TestRuntime.StartAsync(storage: storage);
        var grain = runtime.Grains.GetGrain<IStoredGrain>("lost-answer");
        Assert.Equal(1, await grain.AddAsync("a"));

        storage.FailNextWrite(afterCommit: true);
        Assert.IsType<TimeoutException>((await Assert.ThrowsAsync<WriteOutcomeUnknownException>(() => grain.AddAsync("b"))).InnerException);

        // Storage holds version 2 with both items; the next call sees exactly that and can write on top of it.
        Assert.Equal(2, await grain.VersionAsync());
        Assert.Equal(["a", "b"], await grain.ItemsAsync());
        Assert.Equal(3, await grain.AddAsync("c"));
        Assert.Contains("deactivate:lost-answer:WriteOutcomeUnknown", runtime.Probe.Events);
    }

    [Fact]
    public async Task A_write_that_never_committed_leaves_no_trace_in_the_next_answer()
    {
        var storage = new FaultyStorage(new InMemoryGrainStorage());
        await using var runtime = await TestRuntime.StartAsync(storage: storage);
        var grain = runtime.Grains.GetGrain<IStoredGrain>("lost-write");
        Assert.Equal(1, await grain.AddAsync("a"));

        storage.FailNextWrite(afterCommit: false);
        Assert.IsType<TimeoutException>((await Assert.ThrowsAsync<WriteOutcomeUnknownException>(() => grain.AddAsync("b"))).InnerException);

        Assert.Equal(["a"], await grain.ItemsAsync());
        Assert.Equal(1, await grain.VersionAsync());
    }

    [Fact]
    public async Task A_fenced_write_keeps_the_activation_because_nothing_changed()
    {
        var storage = new FaultyStorage(new InMemoryGrainStorage());
        await using var runtime = await TestRuntime.StartAsync(storage: storage);
        var grain = runtime.Grains.GetGrain<IStoredGrain>("fenced");
        Assert.Equal(1, await grain.AddAsync("a"));

        storage.FenceNextWrite();
        await Assert.ThrowsAsync<FencedWriteException>(() => grain.AddAsync("b"));

        Assert.Equal(1, await grain.VersionAsync());
        Assert.DoesNotContain(runtime.Probe.Events, e => e.StartsWith("deactivate:fenced", StringComparison.Ordinal));
    }

    /// <summary>Storage that can fail one write before or after passing it on, as a lost connection would.</summary>
    private sealed class FaultyStorage(IGrainStorage inner) : IGrainStorage
    {
        private volatile string? _fault;

        public void FailNextWrite(bool afterCommit) => _fault = afterCommit ? "after" : "before";

        public void FenceNextWrite() => _fault = "fence";

        public Task<Persistence.StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
            => inner.ReadAsync(grainId, stateName, cancellationToken);

        public async Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken)
        {
            var fault = Interlocked.Exchange(ref _fault, null);
            switch (fault)
            {
                case "before":
                    throw new TimeoutException("The connection was lost before the commit.");
                case "fence":
                    throw new FencedWriteException("Fenced by a test.", new WriteFence(new GrainId("controller", "cluster"), "epoch", 1), 2);
            }

            var result = await inner.WriteAsync(grainId, stateName, write, cancellationToken);
            return fault == "after" ? throw new TimeoutException("The commit's acknowledgement was lost.") : result;
        }
    }
}
