namespace OrleansMeta.Contracts;

/// <summary>
/// <c>GET /v1/metadata/delta?sinceOffset=N</c>: what changed in the Metadata answer after offset N, answered at
/// <paramref name="MetadataOffset"/> (M). Applied to the Metadata answer at N (see the SDK's
/// <c>MetadataView.Apply</c>), it gives the Metadata answer at M.
/// <para>
/// When the silo cannot answer since N (N is older than <paramref name="MinSinceOffset"/>: the deleted topics it
/// remembers do not reach back that far, or its image started after N), <see cref="Full"/> holds the whole Metadata
/// answer at M instead and every list is empty: replace the view with it.
/// </para>
/// </summary>
/// <param name="SinceOffset">The N asked for.</param>
/// <param name="MetadataOffset">The offset M this answer brings the caller to; ask for the next delta since it.</param>
/// <param name="MinSinceOffset">The lowest N this silo answers with a delta rather than <see cref="Full"/>.</param>
/// <param name="Brokers">Brokers whose record changed after N, in their current state (fenced ones included, so that a
/// view listing unfenced brokers only can drop them), ordered by id.</param>
/// <param name="RemovedBrokers">Ids of brokers unregistered after N (and not registered again).</param>
/// <param name="Topics">Topics created, grown or with a partition changed after N, ordered by name; each lists only the
/// partitions that changed (every partition of a topic created after N).</param>
/// <param name="DeletedTopics">Topics deleted after N, oldest first. Apply them before <paramref name="Topics"/>: a
/// name deleted and created again appears in both.</param>
/// <param name="Controller">The controller at M.</param>
public sealed record MetadataDeltaResponse(
    long SinceOffset,
    long MetadataOffset,
    long MinSinceOffset,
    IReadOnlyList<BrokerInfo> Brokers,
    IReadOnlyList<int> RemovedBrokers,
    IReadOnlyList<TopicDelta> Topics,
    IReadOnlyList<DeletedTopic> DeletedTopics,
    ControllerInfo Controller) : IMetadataOffsetAnswer
{
    /// <summary>The cluster id.</summary>
    public string ClusterId { get; init; } = "";

    /// <summary>Null for a delta; the whole Metadata answer at <see cref="MetadataOffset"/> when the silo could not
    /// answer since <see cref="SinceOffset"/> (the client must then replace its view, not apply anything).</summary>
    public MetadataResponse? Full { get; init; }
}

/// <summary>A topic in a metadata delta: its changed partitions, in the Metadata answer's shape.</summary>
/// <param name="Name">The topic name.</param>
/// <param name="TopicId">The topic id. A view holding this name under another id (or not at all) must take this
/// entry as a new topic: it then lists every partition.</param>
/// <param name="PartitionCount">How many partitions the topic has now (partitions are only ever added).</param>
/// <param name="Partitions">The partitions changed after the delta's since-offset, in their current state, by index;
/// partitions not listed are as they were.</param>
public sealed record TopicDelta(string Name, Guid TopicId, int PartitionCount, IReadOnlyList<PartitionInfo> Partitions)
{
    /// <summary>Whether this is one of Kafka's internal topics.</summary>
    public bool IsInternal { get; init; }
}

/// <summary>A topic deleted after a delta's since-offset.</summary>
/// <param name="Name">The name it had.</param>
/// <param name="TopicId">Its id: drop the topic only if the view holds this name under this id.</param>
/// <param name="DeletedAt">The offset of the record that deleted it (or replaced it by a new topic of the same name).</param>
public sealed record DeletedTopic(string Name, Guid TopicId, long DeletedAt);
