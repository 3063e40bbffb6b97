namespace OrleansMeta.Contracts;

/// <summary>One partition's log offsets as its leader sees them.</summary>
/// <param name="Partition">The partition.</param>
/// <param name="LogStartOffset">The first offset still in the log (what "earliest" means).</param>
/// <param name="LogEndOffset">The offset the next record will get (what "latest" means, and what lag is measured to).</param>
public sealed record PartitionLogOffsets(int Partition, long LogStartOffset, long LogEndOffset);

/// <summary>Log offsets of some partitions of one topic.</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="Partitions">The partitions the reporting broker leads.</param>
public sealed record TopicLogOffsets(string Topic, IReadOnlyList<PartitionLogOffsets> Partitions);

/// <summary>
/// A broker's report of the log offsets of partitions it leads (<c>PUT /v1/brokers/{id}/log-offsets</c>), sent every few
/// seconds, batched: consumer-group lag and resets to earliest/latest use them. Partitions the broker does not lead in
/// the service's metadata are skipped, so a deposed leader's late report changes nothing.
/// </summary>
/// <param name="BrokerEpoch">The epoch the broker's registration returned.</param>
/// <param name="Topics">The partitions reported, by topic.</param>
public sealed record LogOffsetsReport(long BrokerEpoch, IReadOnlyList<TopicLogOffsets> Topics);

/// <summary>The answer to a log-offsets report.</summary>
/// <param name="Accepted">Partitions whose offsets were taken.</param>
/// <param name="NotLeader">Partitions skipped because the broker does not lead them (or reported under an older leader
/// epoch than one already taken).</param>
/// <param name="UnknownPartitions">Partitions skipped because their topic or partition does not exist.</param>
/// <param name="MetadataOffset">The metadata image offset leadership was checked at.</param>
public sealed record LogOffsetsReportResponse(int Accepted, int NotLeader, int UnknownPartitions, long MetadataOffset) : IMetadataOffsetAnswer;
