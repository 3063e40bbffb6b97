using System.Text.Json.Serialization;

namespace OrleansMeta.Contracts;

/// <summary>Body of <c>POST /v1/topics</c>.</summary>
/// <param name="Name">Topic name: 1-249 characters from [a-zA-Z0-9._-], not "." or "..".</param>
/// <param name="Partitions">Number of partitions (default 1) when no assignment is given.</param>
/// <param name="ReplicationFactor">Replicas per partition (default: min(3, live brokers)) when no assignment is given.</param>
/// <param name="Configs">Topic configs such as <c>retention.ms</c>; unknown keys are rejected.</param>
/// <param name="Assignment">Explicit replicas per partition (partition index → broker ids, preferred leader first).</param>
/// <param name="ValidateOnly">Validate fully and answer as if created, but write nothing (Kafka's validateOnly).</param>
public sealed record CreateTopicRequest(
    string Name,
    int? Partitions = null,
    short? ReplicationFactor = null,
    [property: JsonConverter(typeof(ConfigValuesConverter))] IReadOnlyDictionary<string, string>? Configs = null,
    IReadOnlyList<IReadOnlyList<int>>? Assignment = null,
    bool ValidateOnly = false);

/// <summary>One partition's leadership and replicas, as in Kafka's Metadata response.</summary>
/// <param name="Partition">The partition index.</param>
/// <param name="Leader">The leader's broker id, or -1 when the partition is offline.</param>
/// <param name="LeaderEpoch">Grows on every leader change.</param>
/// <param name="PartitionEpoch">Grows on every change to the partition.</param>
/// <param name="Replicas">All replicas, preferred leader first.</param>
/// <param name="Isr">The in-sync replicas.</param>
public sealed record PartitionInfo(int Partition, int Leader, int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr)
{
    /// <summary>Replicas on brokers that are fenced or not registered (Kafka's offline replicas); empty when all are live.</summary>
    public IReadOnlyList<int> OfflineReplicas { get; init; } = [];
}

/// <summary>A topic with its configs and partitions.</summary>
public sealed record TopicDescription(
    string Name,
    Guid TopicId,
    short ReplicationFactor,
    IReadOnlyDictionary<string, string> Configs,
    IReadOnlyList<PartitionInfo> Partitions);

/// <summary>A topic in <c>GET /v1/topics</c>.</summary>
public sealed record TopicSummary(string Name, Guid TopicId, int Partitions, short ReplicationFactor);

/// <summary><c>GET /v1/topics</c>.</summary>
public sealed record TopicsResponse(IReadOnlyList<TopicSummary> Topics, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>The answer to a topic read or change, with the metadata offset it reflects (pass it as <c>minOffset</c>
/// to later reads to read your own writes).</summary>
public sealed record TopicResponse(TopicDescription Topic, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>Body of <c>POST /v1/topics/{name}/partitions</c>: grow the topic to <paramref name="TotalCount"/> partitions.</summary>
/// <param name="TotalCount">The partition count after the change; larger than the current count.</param>
/// <param name="Assignment">Replicas for each new partition, or null to spread them automatically.</param>
/// <param name="ValidateOnly">Validate fully and answer as if added, but write nothing (Kafka's CreatePartitions validateOnly).</param>
public sealed record AddPartitionsRequest(int TotalCount, IReadOnlyList<IReadOnlyList<int>>? Assignment = null, bool ValidateOnly = false);

/// <summary>Body of <c>PATCH /v1/topics/{name}/configs</c>: set keys to values; a null value removes the key (back to its default).</summary>
/// <param name="Configs">Config names to new values; null removes the override.</param>
/// <param name="ValidateOnly">Validate fully and answer as if altered, but write nothing (Kafka's validateOnly).</param>
public sealed record AlterConfigsRequest(
    [property: JsonConverter(typeof(ConfigValuesConverter))] IReadOnlyDictionary<string, string?> Configs,
    bool ValidateOnly = false);

/// <summary>The answer to a delete: the metadata offset of the deletion.</summary>
public sealed record DeleteTopicResponse(string Name, Guid TopicId, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>A config of a topic as <c>GET /v1/topics/{name}/configs</c> describes it (Kafka's DescribeConfigs).</summary>
/// <param name="Name">The config key, e.g. <c>retention.ms</c>.</param>
/// <param name="Value">The value in effect.</param>
/// <param name="IsDefault">True when the topic does not set the key and Kafka's default applies.</param>
/// <param name="Source"><c>DYNAMIC_TOPIC_CONFIG</c> (set on the topic) or <c>DEFAULT_CONFIG</c> (Kafka's default), as Kafka names them.</param>
public sealed record TopicConfigEntry(string Name, string Value, bool IsDefault, string Source);

/// <summary>
/// A topic's configs: every config this service knows, with its value and where it comes from. The answer to
/// <c>GET /v1/topics/{name}/configs</c> and to <c>PATCH</c> of the same resource (the configs after the change, and the
/// change's metadata offset).
/// </summary>
public sealed record TopicConfigsResponse(string Name, Guid TopicId, IReadOnlyList<TopicConfigEntry> Configs, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>
/// Body of <c>POST /v1/configs</c>: config changes of many topics in one request (Kafka's IncrementalAlterConfigs for
/// topic resources). Each topic is changed on its own, with its own outcome; a null value removes a key.
/// </summary>
/// <param name="Topics">The topics and their changes; each topic at most once.</param>
/// <param name="ValidateOnly">Validate every change fully and answer as if altered, but write nothing.</param>
public sealed record AlterTopicsConfigsRequest(IReadOnlyList<TopicConfigChanges> Topics, bool ValidateOnly = false);

/// <summary>One topic's changes in an <see cref="AlterTopicsConfigsRequest"/>.</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="Configs">Config names to new values; null removes the override.</param>
public sealed record TopicConfigChanges(
    string Topic,
    [property: JsonConverter(typeof(ConfigValuesConverter))] IReadOnlyDictionary<string, string?> Configs);

/// <summary>The answer to <c>POST /v1/configs</c>: one result per topic, in the order of the request.</summary>
/// <param name="Topics">Per topic: done, or why not.</param>
/// <param name="MetadataOffset">The newest metadata offset among the changes (or the offset the request was checked
/// at, when nothing was written); a read with this <c>minOffset</c> sees every change.</param>
public sealed record AlterTopicsConfigsResponse(IReadOnlyList<TopicConfigsResult> Topics, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>One topic's outcome (as Kafka's IncrementalAlterConfigs answers: an error per resource, not its configs).</summary>
/// <param name="Topic">The topic's name, as the request gave it.</param>
/// <param name="TopicId">The topic's id; null when it was not changed.</param>
/// <param name="ErrorCode">Null on success, else e.g. <c>UNKNOWN_TOPIC_OR_PARTITION</c> or <c>INVALID_CONFIG</c>.</param>
/// <param name="Message">A sentence explaining the error.</param>
/// <param name="Retryable">Whether sending the same change again may succeed (for example when the topic's silo went
/// away mid-request; its configs then tell whether the change was applied).</param>
public sealed record TopicConfigsResult(string Topic, Guid? TopicId, string? ErrorCode = null, string? Message = null, bool Retryable = false);
