using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Silo.Watch;

/// <summary>
/// A watch's filter. Kinds keep records of those types. Topics, a topic prefix, brokers and consumer groups name
/// entities: when any is given, a record passes if it concerns one of them (a topic or partition record of such a topic;
/// a broker record of such a broker, or a topic or partition record placing a replica on it; a group or group-member
/// record of such a group); controller records then never pass.
/// </summary>
public sealed record WatchSelection(
    IReadOnlySet<string> Kinds,
    IReadOnlySet<string> Topics,
    string? TopicPrefix,
    IReadOnlySet<int> Brokers,
    IReadOnlySet<string> Groups)
{
    public static readonly string[] AllKinds =
        [RecordTypes.Broker, RecordTypes.Topic, RecordTypes.Partition, RecordTypes.Controller, RecordTypes.Group, RecordTypes.GroupMember];

    private static readonly IReadOnlySet<int> NoBrokers = new HashSet<int>();

    public static WatchSelection All { get; } = new(new HashSet<string>(), new HashSet<string>(), null, new HashSet<int>(), new HashSet<string>());

    /// <summary>Whether every record passes.</summary>
    public bool IsAll => Kinds.Count == 0 && !NamesEntities;

    private bool NamesEntities => Topics.Count > 0 || TopicPrefix is not null || Brokers.Count > 0 || Groups.Count > 0;

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

        return !NamesEntities || Concerns(record.Facts.Topic, record.Facts.Brokers, record.Facts.Group);
    }

    /// <summary>Whether an entity with this topic (or none), these brokers and this group (or none) is one the filter
    /// names (always, when it names none).</summary>
    public bool Concerns(string? topic, IReadOnlySet<int> brokers, string? group = null)
    {
        if (!NamesEntities)
        {
            return true;
        }

        if (topic is not null && (Topics.Contains(topic) || (TopicPrefix is { } prefix && topic.StartsWith(prefix, StringComparison.Ordinal))))
        {
            return true;
        }

        if (group is not null && Groups.Contains(group))
        {
            return true;
        }

        return Brokers.Count > 0 && brokers.Overlaps(Brokers);
    }

    /// <summary>
    /// The image's current state for this filter, as records of the log's types: the controller, brokers, topics (a
    /// topic record carrying its current partitions as its initial ones; when the filter wants partition records but
    /// not topic records, one partition record per partition instead), and consumer groups (a group record, then one
    /// group-member record per member).
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
        foreach (var item in topics || partitions ? TopicItems(image, topics) : [])
        {
            yield return item;
        }

        var groups = Wants(RecordTypes.Group);
        var members = Wants(RecordTypes.GroupMember);
        if (!groups && !members)
        {
            yield break;
        }

        foreach (var group in image.Groups.Values.OrderBy(g => g.Group.GroupId, StringComparer.Ordinal))
        {
            var id = group.Group.GroupId;
            if (!Concerns(null, NoBrokers, id))
            {
                continue;
            }

            if (groups)
            {
                yield return (RecordTypes.Group, id, WatchRecord.Serialize(group.Group));
            }

            if (members)
            {
                foreach (var member in group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
                {
                    yield return (RecordTypes.GroupMember, RecordTypes.GroupMemberKey(id, member.MemberId),
                        WatchRecord.Serialize(new GroupMemberRecord(id, member.MemberId, member)));
                }
            }
        }
    }

    private IEnumerable<(string Type, string Key, byte[] Record)> TopicItems(MetadataImage image, bool topics)
    {
        foreach (var topic in image.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal))
        {
            if (!Concerns(topic.Topic.Name, Brokers.Count > 0 ? RecordFacts.Named(topic.Partitions) : NoBrokers))
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
