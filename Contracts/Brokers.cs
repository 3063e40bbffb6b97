namespace OrleansMeta.Contracts;

/// <summary>An endpoint a broker serves clients on.</summary>
/// <param name="Name">The listener name, e.g. <c>PLAINTEXT</c> or <c>INTERNAL</c>.</param>
/// <param name="Host">Host name or address clients connect to.</param>
/// <param name="Port">TCP port.</param>
/// <param name="SecurityProtocol">PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.</param>
public sealed record BrokerListener(string Name, string Host, int Port, string SecurityProtocol = "PLAINTEXT");

/// <summary>Body of <c>POST /v1/brokers/{id}/registration</c>.</summary>
/// <param name="IncarnationId">A new random id for every broker process start.</param>
/// <param name="Listeners">Where the broker serves clients; at least one.</param>
/// <param name="Rack">The broker's rack (failure domain), used to spread replicas; optional.</param>
public sealed record BrokerRegistrationRequest(Guid IncarnationId, IReadOnlyList<BrokerListener> Listeners, string? Rack = null);

/// <summary>The outcome of a registration: the broker epoch every later request of this incarnation carries.</summary>
/// <param name="BrokerId">The registered broker.</param>
/// <param name="BrokerEpoch">The epoch of this incarnation (the metadata offset of its registration record).</param>
/// <param name="MetadataOffset">The metadata log offset of the registration; the broker is unfenced once it has caught up to it.</param>
public sealed record BrokerRegistrationResponse(int BrokerId, long BrokerEpoch, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>The answer to <c>DELETE /v1/brokers/{id}</c> (Kafka's UnregisterBroker): the offset of the record that removed it.</summary>
public sealed record BrokerUnregistrationResponse(int BrokerId, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>Body of <c>POST /v1/brokers/{id}/heartbeat</c>.</summary>
/// <param name="BrokerEpoch">The epoch returned by registration.</param>
/// <param name="CurrentMetadataOffset">The highest metadata offset the broker has applied.</param>
/// <param name="WantShutDown">The broker asks for a controlled shutdown: leadership moves away before it is told it may stop.</param>
public sealed record BrokerHeartbeatRequest(long BrokerEpoch, long CurrentMetadataOffset, bool WantShutDown = false);

/// <summary>The controller's answer to a heartbeat.</summary>
/// <param name="IsFenced">Whether the broker is fenced (may not lead or be in an ISR).</param>
/// <param name="IsCaughtUp">Whether the broker has applied the metadata up to its registration.</param>
/// <param name="ShouldShutDown">After a controlled-shutdown request: leadership has moved away and the broker may stop.</param>
/// <param name="MetadataOffset">The newest metadata offset the service knows.</param>
public sealed record BrokerHeartbeatResponse(bool IsFenced, bool IsCaughtUp, bool ShouldShutDown, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>A broker as the metadata sees it.</summary>
/// <param name="BrokerId">The broker id.</param>
/// <param name="IncarnationId">The registered incarnation.</param>
/// <param name="BrokerEpoch">The epoch of that incarnation.</param>
/// <param name="Listeners">Where the broker serves clients.</param>
/// <param name="Rack">The broker's rack, if any.</param>
/// <param name="State"><c>fenced</c>, <c>unfenced</c> or <c>controlled-shutdown</c>.</param>
public sealed record BrokerInfo(
    int BrokerId,
    Guid IncarnationId,
    long BrokerEpoch,
    IReadOnlyList<BrokerListener> Listeners,
    string? Rack,
    string State);

/// <summary><c>GET /v1/brokers</c>.</summary>
public sealed record BrokersResponse(IReadOnlyList<BrokerInfo> Brokers, long MetadataOffset) : IMetadataOffsetAnswer;
