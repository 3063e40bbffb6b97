using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Silo.Watch;

/// <summary>
/// A watch's filter. Kinds keep records of those types. Topics, a topic prefix and brokers name entities: when any is
/// given, a record passes if it concerns one of them (a topic or partition record of such a topic; a broker record of
/// such a broker, or a topic or partition record placing a replica on it); controller records then never pass.
/// </summary>
public sealed record WatchSelection(
    IReadOnlySet<string> Kinds,
    IReadOnlySet<string> Topics,
    string? TopicPrefix,
    IReadOnlySet<int> Brokers)
{
    public static readonly string[] AllKinds = [RecordTypes.Broker, RecordTypes.Topic, RecordTypes.Partition, RecordTypes.Controller];

    public static WatchSelection All { get; } = new(new HashSet<string>(), new HashSet<string>(), null, new HashSet<int>());

    /// <summary>Whether every record passes.</summary>
    public bool IsAll => Kinds.Count == 0 && !NamesEntities;

    private bool NamesEntities => Topics.Count > 0 || TopicPrefix is not null || Brokers.Count > 0;

    public bool Wants(string kind) => Kinds.Count == 0 || Kinds.Contains(kind);

    public bool Matches(WatchRecord record)
    {
        if (IsAll)
        {
            return true;
        }

        if (!Wants(record.Record.Type))
        {
            return false;
        }

        return !NamesEntities || Concerns(record.Facts.Topic, record.Facts.Brokers);
    }

    /// <summary>Whether an entity with this topic (or none) and these brokers is one the filter names (always, when it
    /// names none).</summary>
    public bool Concerns(string? topic, IReadOnlySet<int> brokers)
    {
        if (!NamesEntities)
        {
            return true;
        }

        if (topic is not null && (Topics.Contains(topic) || (TopicPrefix is { } prefix && topic.StartsWith(prefix, StringComparison.Ordinal))))
        {
            return true;
        }

        return Brokers.Count > 0 && brokers.Overlaps(Brokers);
    }

    /// <summary>
    /// The image's current state for this filter, as records of the log's types: the controller, brokers, and topics
    /// (a topic record carrying its current partitions as its initial ones; when the filter wants partition records but
    /// not topic records, one partition record per partition instead).
    /// </summary>
    public IEnumerable<(string Type, string Key, byte[] Record)> Snapshot(MetadataImage image)
    {
        if (Wants(RecordTypes.Controller) && !NamesEntities && image.Controller is { } controller)
        {
            yield return (RecordTypes.Controller, IControllerGrain.Key, WatchRecord.Serialize(controller));
        }

        if (Wants(RecordTypes.Broker))
        {
            foreach (var broker in image.Brokers.Values.OrderBy(b => b.Record.BrokerId))
            {
                if (Concerns(null, new HashSet<int> { broker.Record.BrokerId }))
                {
                    yield return (RecordTypes.Broker, broker.Record.BrokerId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        WatchRecord.Serialize(broker.Record));
                }
            }
        }

        var topics = Wants(RecordTypes.Topic);
        var partitions = !topics && Wants(RecordTypes.Partition);
        if (!topics && !partitions)
        {
            yield break;
        }

        foreach (var topic in image.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal))
        {
            if (!Concerns(topic.Topic.Name, Brokers.Count > 0 ? RecordFacts.Named(topic.Partitions) : new HashSet<int>()))
            {
                continue;
            }

            if (topics)
            {
                yield return (RecordTypes.Topic, topic.Topic.Name, WatchRecord.Serialize(topic.Topic with { InitialPartitions = topic.Partitions }));
                continue;
            }

            foreach (var partition in topic.Partitions)
            {
                yield return (RecordTypes.Partition, PartitionKeys.For(topic.Topic.TopicId, partition.Partition),
                    WatchRecord.Serialize(new PartitionRecord(topic.Topic.TopicId, topic.Topic.Name, partition, "snapshot", image.Controller?.Epoch ?? 0)));
            }
        }
    }
}
