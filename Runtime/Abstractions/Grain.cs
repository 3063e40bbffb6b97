using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Timers;

namespace OrleansMeta.Runtime;

/// <summary>Why an activation is being deactivated.</summary>
public enum DeactivationReason
{
    /// <summary>Unused for longer than the collection age.</summary>
    Idle,

    /// <summary>The grain asked for it (<see cref="Grain.DeactivateOnIdle"/>).</summary>
    Requested,

    /// <summary>A state write lost its compare-and-set; the activation's copy of the state is stale.</summary>
    StateConflict,

    /// <summary>The silo is shutting down or no longer owns the grain.</summary>
    ShuttingDown,

    /// <summary>Activation failed.</summary>
    ActivationFailed,

    /// <summary>The membership view changed and another silo owns the grain now.</summary>
    PlacementChanged,

    /// <summary>A state write failed in a way that leaves its outcome unknown (timeout, lost connection, commit not
    /// acknowledged): storage may hold it or not, so the activation's copy can no longer be trusted and the next call
    /// loads the state afresh.</summary>
    WriteOutcomeUnknown,

    /// <summary>This silo has been declared dead (or lost its ownership lease): it may commit nothing more, and the
    /// grain's truth now belongs to its new owner.</summary>
    SiloFenced,
}

/// <summary>
/// Base class of grains. The runtime creates one activation per grain id on first call, runs its calls one turn at a
/// time, and deactivates it when idle. Grain code must not use <c>ConfigureAwait(false)</c>: continuations have to stay
/// on the activation's turn.
/// </summary>
public abstract class Grain
{
    private readonly GrainActivation _activation;

    protected Grain()
    {
        _activation = GrainActivation.Constructing
            ?? throw new InvalidOperationException("Grains are created by the grain runtime; do not construct them directly.");
    }

    /// <summary>The identity of this grain.</summary>
    public GrainId GrainId => _activation.GrainId;

    /// <summary>The key of this grain.</summary>
    protected string Key => _activation.GrainId.Key;

    /// <summary>References to other grains.</summary>
    protected IGrainFactory GrainFactory => _activation.Runtime.GrainFactory;

    /// <summary>The runtime's clock (fake in tests).</summary>
    protected TimeProvider TimeProvider => _activation.Runtime.TimeProvider;

    /// <summary>Runs after persistent state is loaded and before the first call. Bounded by the activation timeout.</summary>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs after the last turn, before the activation is dropped. Bounded by the deactivation timeout.
    /// Not called when the process crashes: anything that must survive is written as it happens.</summary>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Deactivates this activation once the current turn ends.</summary>
    protected void DeactivateOnIdle() => _activation.RequestDeactivation(DeactivationReason.Requested);

    /// <summary>
    /// Whether idle collection leaves this activation alone: a grain that serves data from memory to silo-wide queries
    /// (a consumer group listed with its lag) stays loaded while it holds such data. It still deactivates when the silo
    /// stops, when its owner changes, or on <see cref="DeactivateOnIdle"/>. Default: false.
    /// </summary>
    protected bool KeepAliveWhenIdle
    {
        get => _activation.KeepAliveWhenIdle;
        set => _activation.KeepAliveWhenIdle = value;
    }

    /// <summary>
    /// Registers a timer whose callback runs as a turn of this activation (never concurrently with a call) after
    /// <paramref name="dueTime"/> and then every <paramref name="period"/> (<see cref="Timeout.InfiniteTimeSpan"/> for
    /// once). The timer stops when the activation deactivates or the returned handle is disposed. Timer ticks do not
    /// keep a grain from being collected as idle.
    /// </summary>
    protected IDisposable RegisterGrainTimer(Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period)
        => GrainTimer.Start(_activation, callback, dueTime, period);
}
