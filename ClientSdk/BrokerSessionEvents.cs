namespace OrleansMeta.Client;

/// <summary>Where a <see cref="BrokerSession"/> stands.</summary>
public enum BrokerSessionState
{
    /// <summary>Created; <see cref="BrokerSession.StartAsync"/> has not been called.</summary>
    Created,

    /// <summary>Registering (first, or again after the service stopped accepting the broker's epoch). Fenced meanwhile.</summary>
    Registering,

    /// <summary>Registered and heartbeating, but fenced: the broker may not lead or be in an ISR. A fresh registration
    /// is fenced until its applied metadata offset reaches the registration's; a broker whose session expired (e.g.
    /// while no silo could be reached) is fenced until its next heartbeat is answered.</summary>
    Fenced,

    /// <summary>Registered, heartbeating and unfenced: the broker may lead and be in ISRs.</summary>
    Unfenced,

    /// <summary>A controlled shutdown is under way: heartbeats ask for it until the service says the broker may stop.</summary>
    ShuttingDown,

    /// <summary>Stopped (by <see cref="BrokerSession.StopAsync"/>, a finished controlled shutdown, or a cancelled start).
    /// No more heartbeats.</summary>
    Stopped,

    /// <summary>Ended by a failure that retrying cannot fix; <see cref="BrokerSession.Completion"/> holds it.</summary>
    Faulted,
}

/// <summary>A <see cref="BrokerSession"/> moved from one state to another.</summary>
/// <param name="previous">The state before.</param>
/// <param name="state">The state now.</param>
/// <param name="brokerEpoch">The broker epoch at the time (-1 before the first registration).</param>
public sealed class BrokerSessionStateChangedEventArgs(BrokerSessionState previous, BrokerSessionState state, long brokerEpoch) : EventArgs
{
    /// <summary>The state before.</summary>
    public BrokerSessionState PreviousState { get; } = previous;

    /// <summary>The state now.</summary>
    public BrokerSessionState State { get; } = state;

    /// <summary>The broker epoch at the time (-1 before the first registration).</summary>
    public long BrokerEpoch { get; } = brokerEpoch;
}

/// <summary>A <see cref="BrokerSession"/> registered its broker: the first time, or again after the service stopped
/// accepting its epoch.</summary>
/// <param name="brokerEpoch">The epoch the broker's requests carry from now on.</param>
/// <param name="registrationOffset">The metadata offset of the registration; the broker is unfenced once it has applied it.</param>
/// <param name="previousBrokerEpoch">The epoch the service stopped accepting, or null for the first registration.</param>
/// <param name="reason">The error that made the session register again (STALE_BROKER_EPOCH or BROKER_ID_NOT_REGISTERED),
/// or null for the first registration.</param>
public sealed class BrokerRegisteredEventArgs(long brokerEpoch, long registrationOffset, long? previousBrokerEpoch, MetaApiException? reason) : EventArgs
{
    /// <summary>The epoch the broker's requests carry from now on. Anything the broker did under an older epoch (e.g.
    /// an ISR change it proposed) is refused by the service from now on.</summary>
    public long BrokerEpoch { get; } = brokerEpoch;

    /// <summary>The metadata offset of the registration; the broker is unfenced once it has applied it.</summary>
    public long RegistrationOffset { get; } = registrationOffset;

    /// <summary>The epoch the service stopped accepting, or null for the first registration.</summary>
    public long? PreviousBrokerEpoch { get; } = previousBrokerEpoch;

    /// <summary>Whether this is a registration after the service stopped accepting the previous epoch.</summary>
    public bool IsReRegistration => PreviousBrokerEpoch is not null;

    /// <summary>The error that made the session register again, or null for the first registration.</summary>
    public MetaApiException? Reason { get; } = reason;
}

/// <summary>A call of a <see cref="BrokerSession"/> failed.</summary>
/// <param name="exception">The failure.</param>
/// <param name="willRetry">True when the session retries (after a backoff) or registers again; false when the failure
/// ends the session.</param>
public sealed class BrokerSessionErrorEventArgs(Exception exception, bool willRetry) : EventArgs
{
    /// <summary>The failure: usually a <see cref="MetaApiException"/>.</summary>
    public Exception Exception { get; } = exception;

    /// <summary>True when the session retries (after a backoff) or registers again; false when the failure ended the
    /// session (it is then <see cref="BrokerSessionState.Faulted"/> and <see cref="BrokerSession.Completion"/> holds it).</summary>
    public bool WillRetry { get; } = willRetry;
}
