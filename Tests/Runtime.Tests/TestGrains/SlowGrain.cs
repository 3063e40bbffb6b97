namespace OrleansMeta.Runtime.Tests.Infrastructure;

public interface ISlowGrain : IGrainWithStringKey
{
    /// <summary>Never finishes on its own; records when its token is cancelled.</summary>
    Task WaitForeverAsync(CancellationToken cancellationToken);

    Task<string> PingAsync();
}

internal sealed class SlowGrain(TestProbe probe) : Grain, ISlowGrain
{
    public async Task WaitForeverAsync(CancellationToken cancellationToken)
    {
        probe.Record($"waiting:{Key}");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            probe.Record($"cancelled:{Key}");
            throw;
        }
    }

    public Task<string> PingAsync() => Task.FromResult("pong");
}
