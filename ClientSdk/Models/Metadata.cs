namespace OrleansMeta.Client.Models;

/// <summary>A topic in the metadata response; <paramref name="ErrorCode"/> is <c>UNKNOWN_TOPIC_OR_PARTITION</c> for a
/// requested topic that does not exist.</summary>
public sealed record TopicMetadata(string Name, Guid TopicId, string? ErrorCode, IReadOnlyList<PartitionInfo> Partitions);

/// <summary>The controller: which silo runs it and its epoch (grows every time a new controller takes over).</summary>
public sealed record ControllerInfo(string? Silo, long Epoch);

/// <summary><c>GET /v1/metadata</c>: brokers, and per partition the leader, leader epoch, replicas and ISR (Kafka's
/// Metadata request), answered from the silo's in-memory image at <paramref name="MetadataOffset"/>.</summary>
public sealed record MetadataResponse(IReadOnlyList<BrokerInfo> Brokers, IReadOnlyList<TopicMetadata> Topics, ControllerInfo Controller, long MetadataOffset);

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
