namespace OrleansMeta.Runtime.Tests.Infrastructure;

public interface ISessionGrain : IGrainWithStringKey
{
    Task<string> PingAsync();
}

/// <summary>A grain that keeps truth in memory, so that it has one owner at a time.</summary>
[KeepsTruthInMemory]
internal sealed class SessionGrain(TestProbe probe) : Grain, ISessionGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        probe.Record($"activate:{Key}");
        return Task.CompletedTask;
    }

    public Task<string> PingAsync() => Task.FromResult(Key);
}
