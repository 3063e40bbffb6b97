using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Runtime.Timers;

/// <summary>
/// A timer bound to an activation. Each tick is queued as a turn of the activation, so the callback never runs
/// concurrently with a call; the next tick is scheduled only after the callback has finished, so ticks never pile up.
/// </summary>
internal sealed class GrainTimer : IDisposable
{
    private readonly GrainActivation _activation;
    private readonly Func<CancellationToken, Task> _callback;
    private readonly TimeSpan _period;
    private readonly CancellationTokenSource _stopped = new();
    private readonly ITimer _timer;

    private GrainTimer(GrainActivation activation, Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period)
    {
        _activation = activation;
        _callback = callback;
        _period = period;
        _timer = activation.Runtime.TimeProvider.CreateTimer(static s => ((GrainTimer)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        activation.AddTimer(this);
        _timer.Change(dueTime, Timeout.InfiniteTimeSpan);
    }

    public static IDisposable Start(GrainActivation activation, Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
        if (period != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        }

        return new GrainTimer(activation, callback, dueTime, period);
    }

    private void Fire()
    {
        if (!_stopped.IsCancellationRequested)
        {
            _activation.EnqueueTimerTick(this);
        }
    }

    /// <summary>Runs the callback as a turn of the activation (called by the activation's turn loop).</summary>
    internal async Task TickAsync()
    {
        if (_stopped.IsCancellationRequested)
        {
            return;
        }

        try
        {
            // A silo that is not serving (declared dead, cut off, paused past its lease) skips the tick: the grain's
            // memory may already belong to an activation elsewhere. The timer stays armed for when it serves again.
            if (_activation.Runtime.IsServing)
            {
                await _callback(_stopped.Token);
            }
        }
        catch (Exception exception)
        {
            // A failure after Stop is the callback noticing its cancellation: expected, not worth a warning.
            if (!_stopped.IsCancellationRequested)
            {
                TimerLog.CallbackFailed(_activation.Runtime.Logger, exception, _activation.GrainId);
            }
        }

        if (!_stopped.IsCancellationRequested && _period != Timeout.InfiniteTimeSpan)
        {
            _timer.Change(_period, Timeout.InfiniteTimeSpan);
        }
    }

    internal void Stop()
    {
        if (!_stopped.IsCancellationRequested)
        {
            _stopped.Cancel();
            _timer.Dispose();
        }
    }

    public void Dispose()
    {
        Stop();
        _activation.RemoveTimer(this);
    }
}
