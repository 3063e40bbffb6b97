using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

public sealed record RegisterBroker(Guid IncarnationId, IReadOnlyList<ListenerRecord> Listeners, string? Rack);

public sealed record BrokerRegistration(int BrokerId, long BrokerEpoch, long MetadataOffset);

public sealed record BrokerHeartbeat(long BrokerEpoch, long CurrentMetadataOffset, bool WantShutDown);

public sealed record BrokerHeartbeatResult(bool IsFenced, bool IsCaughtUp, bool ShouldShutDown, long MetadataOffset);

/// <summary>One broker (key: the broker id). Heartbeats stay in memory; only state transitions are written.</summary>
[GrainType("broker")]
public interface IBrokerGrain : IGrainWithStringKey
{
    /// <summary>Registers an incarnation; a second incarnation while the first's session lives is refused.</summary>
    Task<BrokerRegistration> RegisterAsync(RegisterBroker registration);

    /// <summary>Keeps the session alive; unfences a caught-up broker; drives controlled shutdown.</summary>
    Task<BrokerHeartbeatResult> HeartbeatAsync(BrokerHeartbeat heartbeat);

    /// <summary>
    /// Removes a broker that is gone for good (Kafka's UnregisterBroker): refused while it is not fenced or its session is
    /// alive (BROKER_SESSION_ALIVE), and while any partition still lists it as a replica (BROKER_HAS_REPLICAS). Writes an
    /// <c>unregistered</c> record, so every image drops it.
    /// </summary>
    /// <returns>The metadata log offset of the <c>unregistered</c> record.</returns>
    Task<long> UnregisterAsync();

    /// <summary>Activates the grain (and so its session clock) after a silo failure moved it.</summary>
    [ReadOnly]
    Task PingAsync();
}
