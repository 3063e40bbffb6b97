namespace OrleansMeta.Contracts;

/// <summary>
/// Body of <c>POST /v1/topics/{name}/partitions/{p}/isr</c> (Kafka's AlterPartition): the partition leader proposes a
/// new ISR, as a compare-and-set on the partition epoch it last saw.
/// </summary>
/// <param name="LeaderId">The broker sending the request; must be the current leader.</param>
/// <param name="BrokerEpoch">The leader's current broker epoch.</param>
/// <param name="LeaderEpoch">The leader epoch the leader holds.</param>
/// <param name="PartitionEpoch">The partition epoch the change is based on.</param>
/// <param name="NewIsr">The proposed in-sync replicas; a subset of the replicas that includes the leader.</param>
public sealed record AlterPartitionRequest(int LeaderId, long BrokerEpoch, int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> NewIsr);

/// <summary>The partition after a change, and the metadata offset of the change.</summary>
public sealed record PartitionResponse(string Topic, PartitionInfo Partition, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>Partitions of one topic, as named in an election request.</summary>
public sealed record TopicPartitions(string Topic, IReadOnlyList<int> Partitions);

/// <summary>Body of <c>POST /v1/elections</c>.</summary>
/// <param name="Type"><c>preferred</c> (move leadership to the first live in-sync replica of the assignment) or
/// <c>unclean</c> (elect any live replica when no in-sync replica is alive; may lose data).</param>
/// <param name="Partitions">The partitions to elect for; null for every partition (preferred only).</param>
public sealed record ElectionRequest(string Type, IReadOnlyList<TopicPartitions>? Partitions = null);

/// <summary>The outcome for one partition of an election.</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Partition">The partition index.</param>
/// <param name="Leader">The leader after the election (-1 when offline).</param>
/// <param name="LeaderEpoch">The leader epoch after the election.</param>
/// <param name="Message">A sentence explaining an error, if any.</param>
/// <param name="ErrorCode">Null on success, else a Kafka error name such as <c>ELECTION_NOT_NEEDED</c> or
/// <c>PREFERRED_LEADER_NOT_AVAILABLE</c>.</param>
public sealed record ElectionResult(string Topic, int Partition, int Leader, int LeaderEpoch, string? ErrorCode, string? Message);

/// <summary>The answer to <c>POST /v1/elections</c>.</summary>
public sealed record ElectionResponse(IReadOnlyList<ElectionResult> Results, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>
/// Body of <c>POST /v1/brokers/{id}/alter-partition</c>: Kafka's AlterPartition as a broker sends it, one request for
/// every partition it leads whose ISR should change. The broker is the leader of each partition named.
/// </summary>
/// <param name="BrokerEpoch">The sending broker's current broker epoch (checked first, for the whole request).</param>
/// <param name="Topics">The partitions, by topic; each topic and each partition of a topic at most once.</param>
public sealed record AlterPartitionsRequest(long BrokerEpoch, IReadOnlyList<AlterPartitionTopic> Topics);

/// <summary>The partitions of one topic in an <see cref="AlterPartitionsRequest"/>.</summary>
public sealed record AlterPartitionTopic(string Topic, IReadOnlyList<AlterPartitionItem> Partitions);

/// <summary>One partition's proposed change: a compare-and-set on the partition epoch.</summary>
/// <param name="Partition">The partition index.</param>
/// <param name="LeaderEpoch">The leader epoch the sender holds for it.</param>
/// <param name="PartitionEpoch">The partition epoch the change is based on.</param>
/// <param name="NewIsr">The proposed in-sync replicas; a subset of the replicas that includes the leader.</param>
public sealed record AlterPartitionItem(int Partition, int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> NewIsr);

/// <summary>The answer to a batched AlterPartition: one result per partition, in the order of the request.</summary>
/// <param name="Topics">Per topic, per partition: the partition after the change, or why it was refused.</param>
/// <param name="MetadataOffset">The newest metadata offset among the changes (or the offset the request was checked
/// at, when nothing changed); a metadata read with this <c>minOffset</c> sees every change.</param>
public sealed record AlterPartitionsResponse(IReadOnlyList<AlterPartitionTopicResult> Topics, long MetadataOffset) : IMetadataOffsetAnswer;

/// <summary>The results of one topic's partitions.</summary>
/// <param name="Topic">The topic's name, as the request gave it.</param>
/// <param name="TopicId">The topic's id; null when no topic of that name exists.</param>
/// <param name="Partitions">One result per partition, in the order of the request.</param>
public sealed record AlterPartitionTopicResult(string Topic, Guid? TopicId, IReadOnlyList<AlterPartitionResult> Partitions);

/// <summary>One partition's outcome: its state after the change, or a Kafka error name with a sentence.</summary>
/// <param name="Partition">The partition index.</param>
/// <param name="State">The partition after the change (or as it is, when the change changed nothing); null on error.</param>
/// <param name="ErrorCode">Null on success, else e.g. <c>INVALID_UPDATE_VERSION</c>, <c>FENCED_LEADER_EPOCH</c>,
/// <c>NOT_LEADER_OR_FOLLOWER</c>, <c>INELIGIBLE_REPLICA</c>, <c>UNKNOWN_TOPIC_OR_PARTITION</c>.</param>
/// <param name="Message">A sentence explaining the error.</param>
/// <param name="Retryable">Whether sending the same change again may succeed (for example when the partition's silo
/// went away mid-request; the partition's state then tells whether it was applied).</param>
public sealed record AlterPartitionResult(int Partition, PartitionInfo? State, string? ErrorCode = null, string? Message = null, bool Retryable = false);
