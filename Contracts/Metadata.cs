namespace OrleansMeta.Contracts;

/// <summary>A topic in the metadata response; <paramref name="ErrorCode"/> is <c>UNKNOWN_TOPIC_OR_PARTITION</c> for a
/// requested topic that does not exist.</summary>
public sealed record TopicMetadata(string Name, Guid TopicId, string? ErrorCode, IReadOnlyList<PartitionInfo> Partitions)
{
    /// <summary>Whether this is one of Kafka's internal topics (<c>__consumer_offsets</c>, <c>__transaction_state</c>).</summary>
    public bool IsInternal { get; init; }
}

/// <summary>
/// The controller: which silo runs it (null while no controller has taken over) and its epoch (grows every time a new
/// controller takes over). Kafka's Metadata answer carries a <c>controllerId</c>, a broker id (under KRaft a random
/// live broker, since clients cannot reach the controller quorum); here the controller is a grain on a silo, so the
/// answer names that silo and the controller epoch instead.
/// </summary>
public sealed record ControllerInfo(string? Silo, long Epoch);

/// <summary><c>GET /v1/metadata</c>: brokers, and per partition the leader, leader epoch, replicas, ISR and offline
/// replicas (Kafka's Metadata request), answered from the silo's in-memory image at <paramref name="MetadataOffset"/>.
/// <paramref name="Brokers"/> lists unfenced brokers only, as Kafka does, unless <c>includeFenced=true</c> is asked.</summary>
public sealed record MetadataResponse(IReadOnlyList<BrokerInfo> Brokers, IReadOnlyList<TopicMetadata> Topics, ControllerInfo Controller, long MetadataOffset) : IMetadataOffsetAnswer
{
    /// <summary>The cluster id (Kafka's Metadata answer carries its cluster id too).</summary>
    public string ClusterId { get; init; } = "";
}

/// <summary>A silo in <c>GET /v1/cluster</c>.</summary>
public sealed record SiloInfo(
    string Endpoint,
    long Generation,
    string Name,
    string Status,
    DateTimeOffset StartedAt,
    DateTimeOffset HeartbeatAt,
    int SuspicionVotes,
    bool IsSelf);

/// <summary><c>GET /v1/cluster</c>: the cluster id, the membership view the answering silo holds, and the controller.</summary>
public sealed record ClusterInfo(
    string ClusterId,
    long ViewVersion,
    DateTimeOffset ViewReadAt,
    string? Self,
    IReadOnlyList<SiloInfo> Silos,
    ControllerInfo? Controller = null);
