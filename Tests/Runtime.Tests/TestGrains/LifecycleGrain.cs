namespace OrleansMeta.Runtime.Tests.Infrastructure;

public interface ILifecycleGrain : IGrainWithStringKey
{
    Task<int> PingAsync();

    Task StartTimerAsync(TimeSpan period);

    Task StopTimerAsync();

    Task<int> TickCountAsync();

    Task DeactivateAsync();
}

/// <summary>Records its lifecycle in the probe. Keys steer misbehaviour: "fail-*" throws on activation, "hang-activate-*"
/// never finishes activating, "hang-deactivate-*" never finishes deactivating.</summary>
internal sealed class LifecycleGrain(TestProbe probe) : Grain, ILifecycleGrain
{
    private static int s_instances;
    private readonly int _instance = Interlocked.Increment(ref s_instances);
    private IDisposable? _timer;
    private int _ticks;
    private bool _inTurn;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        probe.Record($"activate:{Key}");
        if (Key.StartsWith("fail-", StringComparison.Ordinal) && probe.Count($"activate:{Key}") == 1)
        {
            throw new InvalidOperationException("activation failed on purpose");
        }

        if (Key.StartsWith("hang-activate-", StringComparison.Ordinal))
        {
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        probe.Record($"deactivate:{Key}:{reason}");
        if (Key.StartsWith("hang-deactivate-", StringComparison.Ordinal) && reason == DeactivationReason.Requested)
        {
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        }
    }

    public Task<int> PingAsync() => Task.FromResult(_instance);

    public Task StartTimerAsync(TimeSpan period)
    {
        _timer = RegisterGrainTimer(async _ =>
        {
            if (_inTurn)
            {
                probe.Record("timer-overlapped-a-call");
            }

            _ticks++;
            probe.Record($"tick:{Key}");
            await Task.Yield();
        }, period, period);
        return Task.CompletedTask;
    }

    public Task StopTimerAsync()
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public async Task<int> TickCountAsync()
    {
        _inTurn = true;
        await Task.Yield();
        _inTurn = false;
        return _ticks;
    }

    public Task DeactivateAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
