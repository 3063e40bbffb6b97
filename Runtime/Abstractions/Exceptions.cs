namespace OrleansMeta.Runtime;

/// <summary>Base of the errors the grain runtime raises itself.</summary>
public class GrainRuntimeException : Exception
{
    public GrainRuntimeException(string message) : base(message) { }

    public GrainRuntimeException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Whether repeating the same call may succeed (the failure was about where or when, not what).</summary>
    public virtual bool IsRetryable => false;
}

/// <summary>A conditional state write found a different version in storage: another activation (or a stale copy of
/// this one) wrote first. The activation is deactivated so the next call reloads the current state.</summary>
public sealed class InconsistentStateException : GrainRuntimeException
{
    public InconsistentStateException(string message, long expectedVersion, long? storedVersion)
        : base(message)
    {
        ExpectedVersion = expectedVersion;
        StoredVersion = storedVersion;
    }

    public long ExpectedVersion { get; }

    /// <summary>The version found in storage, when the provider knows it.</summary>
    public long? StoredVersion { get; }

    public override bool IsRetryable => true;
}

/// <summary>A call did not complete within its timeout. The callee may still complete the work.</summary>
public sealed class GrainCallTimeoutException(string message) : GrainRuntimeException(message)
{
    public override bool IsRetryable => true;
}

/// <summary>A call would wait on a grain that is itself waiting on this call chain; it fails at once rather than
/// hanging until the timeout.</summary>
public sealed class GrainCallCycleException(string message, IReadOnlyList<GrainId> cycle) : GrainRuntimeException(message)
{
    /// <summary>The grains of the cycle in call order, starting and ending with the same grain.</summary>
    public IReadOnlyList<GrainId> Cycle { get; } = cycle;
}

/// <summary>A grain could not be activated: loading its state or its <c>OnActivateAsync</c> failed or timed out.</summary>
public sealed class GrainActivationException(string message, Exception? innerException)
    : GrainRuntimeException(message, innerException)
{
    public override bool IsRetryable => true;
}

/// <summary>
/// A state write was refused because the silo that made it has been declared dead: every write is fenced by the
/// writer's membership row, so a silo that peers gave up on (and whose grains they moved) can commit nothing more,
/// even before it learns it is dead. Nothing was written; the call may be retried, and reaches the new owner.
/// </summary>
public sealed class SiloFencedException(string message) : GrainRuntimeException(message)
{
    public override bool IsRetryable => true;
}

/// <summary>
/// A state write failed in a way that leaves its outcome unknown (a timeout, a lost connection, a commit whose
/// acknowledgement never arrived): storage may hold it or not. The activation reloads before it answers again, so a
/// caller that retries meets the state as committed; a compare-and-set write retried after it did commit is refused
/// as stale rather than applied twice.
/// </summary>
public sealed class WriteOutcomeUnknownException(string message, Exception innerException) : GrainRuntimeException(message, innerException)
{
    public override bool IsRetryable => true;
}

/// <summary>
/// A grain call failed on the silo that owns the grain because that silo could not use its database (a
/// <see cref="System.Data.Common.DbException"/> or a timeout outside a state write, which would have said
/// <see cref="WriteOutcomeUnknownException"/>). This is how such a failure reaches a caller on another silo: the
/// caller cannot tell what the owner did before it failed, so it treats the call as it treats a lost write: retry,
/// and a change that did happen is then seen as done or refused as stale.
/// </summary>
public sealed class StorageUnavailableException(string message) : GrainRuntimeException(message)
{
    public override bool IsRetryable => true;
}
