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
public sealed record PartitionResponse(string Topic, PartitionInfo Partition, long MetadataOffset);

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
public sealed record ElectionResponse(IReadOnlyList<ElectionResult> Results, long MetadataOffset);
