using System.Collections.Immutable;
using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Metadata;

/// <summary>A broker as the image holds it: its last record and the offset at which it registered.</summary>
public sealed record BrokerImage(BrokerRecord Record, long RegistrationOffset)
{
    public bool IsFenced => Record.State == BrokerStates.Fenced;

    public bool IsShuttingDown => Record.State == BrokerStates.ControlledShutdown;

    /// <summary>Unfenced and not in controlled shutdown: may lead, join an ISR, and counts for the replication factor
    /// (Kafka's "active" broker).</summary>
    public bool IsActive => Record.State == BrokerStates.Unfenced;
}

/// <summary>A topic and the current state of each of its partitions.</summary>
public sealed record TopicImage(TopicRecord Topic, ChunkedArray<PartitionState> Partitions);

/// <summary>A consumer group as the log describes it: its header and its members by id.</summary>
public sealed record GroupImage(GroupRecord Group, ImmutableDictionary<string, GroupMemberDescription> Members)
{
    public static GroupImage Of(GroupRecord group) => new(group, ImmutableDictionary<string, GroupMemberDescription>.Empty.WithComparers(StringComparer.Ordinal));
}

/// <summary>
/// An immutable snapshot of all metadata at one log offset (like KRaft's MetadataImage): brokers, topics with their
/// partitions, the controller, and consumer groups' membership and assignments (not their offsets). Built by applying log records in order; every silo that applied the same prefix
/// holds an equal image. Reads never touch the database.
/// </summary>
public sealed class MetadataImage
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static MetadataImage Empty { get; } = new(0, ImmutableDictionary<int, BrokerImage>.Empty,
        ImmutableDictionary<string, TopicImage>.Empty.WithComparers(StringComparer.Ordinal), ImmutableDictionary<Guid, string>.Empty, null,
        ImmutableDictionary<string, GroupImage>.Empty.WithComparers(StringComparer.Ordinal));

    private MetadataImage(
        long offset,
        ImmutableDictionary<int, BrokerImage> brokers,
        ImmutableDictionary<string, TopicImage> topics,
        ImmutableDictionary<Guid, string> topicNames,
        ControllerRecord? controller,
        ImmutableDictionary<string, GroupImage> groups,
        MetadataChanges? changes = null)
    {
        Groups = groups;
        Offset = offset;
        Changes = changes ?? MetadataChanges.Since(offset);
        Brokers = brokers;
        Topics = topics;
        TopicNames = topicNames;
        Controller = controller;
    }

    /// <summary>The offset of the last record applied.</summary>
    public long Offset { get; }

    public ImmutableDictionary<int, BrokerImage> Brokers { get; }

    /// <summary>Live (not deleted) topics by name.</summary>
    public ImmutableDictionary<string, TopicImage> Topics { get; }

    /// <summary>Topic names by topic id, for live topics.</summary>
    public ImmutableDictionary<Guid, string> TopicNames { get; }

    public ControllerRecord? Controller { get; }

    /// <summary>Consumer groups by id, as their <c>group</c> and <c>group-member</c> records describe them.</summary>
    public ImmutableDictionary<string, GroupImage> Groups { get; }

    /// <summary>When each broker, topic and partition last changed, for metadata deltas. Derived while records are
    /// applied and never stored: an image built from anything but the whole log answers deltas only from its own
    /// starting offset on (see <see cref="MetadataChanges"/>).</summary>
    public MetadataChanges Changes { get; }

    /// <summary>Brokers that may lead and be in an ISR (unfenced, including those in controlled shutdown).</summary>
    public IEnumerable<BrokerImage> LiveBrokers => Brokers.Values.Where(b => !b.IsFenced);

    public TopicImage? FindTopic(Guid topicId) => TopicNames.TryGetValue(topicId, out var name) ? Topics[name] : null;

    /// <summary>The image after applying <paramref name="records"/> (which must follow <see cref="Offset"/> in order).</summary>
    public MetadataImage Apply(IReadOnlyList<LoggedRecord> records)
    {
        if (records.Count == 0)
        {
            return this;
        }

        var brokers = Brokers.ToBuilder();
        var topics = Topics.ToBuilder();
        var names = TopicNames.ToBuilder();
        var controller = Controller;
        var changes = Changes.ToBuilder();
        var groups = Groups.ToBuilder();

        // Partition arrays changed in this batch are edited through one builder per topic, which copies each chunk it
        // changes once: a batch of N changes to one topic costs O(N + partitions / chunk size), not O(partitions × N).
        var edited = new Dictionary<string, ChunkedArray<PartitionState>.Builder>(StringComparer.Ordinal);
        var offset = Offset;
        foreach (var record in records)
        {
            if (record.Offset != offset + 1)
            {
                throw new InvalidOperationException($"Metadata log gap: expected offset {offset + 1}, got {record.Offset}.");
            }

            offset = record.Offset;
            switch (record.Type)
            {
                case RecordTypes.Broker:
                    var broker = JsonSerializer.Deserialize<BrokerRecord>(record.Payload, Json)!;
                    if (broker.Change == BrokerChanges.Unregistered)
                    {
                        brokers.Remove(broker.BrokerId);
                        changes.BrokerRemoved(broker.BrokerId, record.Offset);
                        break;
                    }

                    if (broker.Change == BrokerChanges.Registered)
                    {
                        // The broker epoch is the registration record's offset, known only once it was written.
                        broker = broker with { BrokerEpoch = record.Offset, RegistrationOffset = record.Offset };
                    }

                    var registeredAt = broker.Change == BrokerChanges.Registered || !brokers.TryGetValue(broker.BrokerId, out var known)
                        ? record.Offset
                        : known.RegistrationOffset;
                    brokers[broker.BrokerId] = new BrokerImage(broker, registeredAt);
                    changes.BrokerChanged(broker.BrokerId, record.Offset);
                    break;

                case RecordTypes.Topic:
                    var topic = MetadataRecordReader.ReadTopic(record.Payload);
                    ApplyTopic(topic, topics, names, edited, changes, record.Offset);
                    break;

                case RecordTypes.Partition:
                    var partition = MetadataRecordReader.ReadPartition(record.Payload);
                    if (names.TryGetValue(partition.TopicId, out var topicName))
                    {
                        if (!edited.TryGetValue(topicName, out var array))
                        {
                            edited[topicName] = array = topics[topicName].Partitions.ToBuilder();
                        }

                        if (partition.State.Partition < array.Length)
                        {
                            array[partition.State.Partition] = partition.State;
                            changes.PartitionChanged(topicName, partition.TopicId, array.Length, partition.State.Partition, record.Offset);
                        }
                    }

                    break;

                case RecordTypes.Controller:
                    controller = JsonSerializer.Deserialize<ControllerRecord>(record.Payload, Json);
                    break;

                case RecordTypes.Group:
                    var group = JsonSerializer.Deserialize<GroupRecord>(record.Payload, Json)!;
                    if (group.Deleted)
                    {
                        groups.Remove(group.GroupId);
                    }
                    else
                    {
                        groups[group.GroupId] = groups.TryGetValue(group.GroupId, out var existing) ? existing with { Group = group } : GroupImage.Of(group);
                    }

                    break;

                case RecordTypes.GroupMember:
                    // A group's first record of an activation is its header, so a member never comes before its group.
                    var member = JsonSerializer.Deserialize<GroupMemberRecord>(record.Payload, Json)!;
                    if (groups.TryGetValue(member.GroupId, out var holder))
                    {
                        groups[member.GroupId] = holder with
                        {
                            Members = member.Member is { } description
                                ? holder.Members.SetItem(member.MemberId, description)
                                : holder.Members.Remove(member.MemberId),
                        };
                    }

                    break;
            }
        }

        foreach (var (name, array) in edited)
        {
            if (topics.TryGetValue(name, out var topicImage))
            {
                topics[name] = topicImage with { Partitions = array.ToImmutable() };
            }
        }

        return new MetadataImage(offset, brokers.ToImmutable(), topics.ToImmutable(), names.ToImmutable(), controller, groups.ToImmutable(), changes.ToImmutable());
    }

    /// <summary>An image rebuilt from its parts (a snapshot): the same image that applying the log up to
    /// <paramref name="offset"/> built.</summary>
    internal static MetadataImage Restore(
        long offset, IEnumerable<BrokerImage> brokers, IEnumerable<TopicImage> topics, ControllerRecord? controller, IEnumerable<GroupImage> groups)
    {
        var brokerMap = ImmutableDictionary.CreateBuilder<int, BrokerImage>();
        foreach (var broker in brokers)
        {
            brokerMap[broker.Record.BrokerId] = broker;
        }

        var topicMap = ImmutableDictionary.CreateBuilder<string, TopicImage>(StringComparer.Ordinal);
        var names = ImmutableDictionary.CreateBuilder<Guid, string>();
        foreach (var topic in topics)
        {
            topicMap[topic.Topic.Name] = topic;
            names[topic.Topic.TopicId] = topic.Topic.Name;
        }

        var groupMap = ImmutableDictionary.CreateBuilder<string, GroupImage>(StringComparer.Ordinal);
        foreach (var group in groups)
        {
            groupMap[group.Group.GroupId] = group;
        }

        return new MetadataImage(offset, brokerMap.ToImmutable(), topicMap.ToImmutable(), names.ToImmutable(), controller, groupMap.ToImmutable());
    }

    private static void ApplyTopic(
        TopicRecord topic,
        ImmutableDictionary<string, TopicImage>.Builder topics,
        ImmutableDictionary<Guid, string>.Builder names,
        Dictionary<string, ChunkedArray<PartitionState>.Builder> edited,
        MetadataChanges.Builder changes,
        long offset)
    {
        if (topic.Deleted)
        {
            if (topics.TryGetValue(topic.Name, out var existing) && existing.Topic.TopicId == topic.TopicId)
            {
                topics.Remove(topic.Name);
                names.Remove(topic.TopicId);
                edited.Remove(topic.Name);
                changes.TopicDeleted(topic.Name, topic.TopicId, offset);
            }

            return;
        }

        if (topics.TryGetValue(topic.Name, out var current) && current.Topic.TopicId == topic.TopicId)
        {
            // Existing partitions keep their current state; only partitions added by this record take their initial one.
            var partitions = edited.Remove(topic.Name, out var pending) ? pending : current.Partitions.ToBuilder();
            var before = partitions.Length;
            for (var i = before; i < topic.InitialPartitions.Count; i++)
            {
                partitions.Add(topic.InitialPartitions[i]);
            }

            topics[topic.Name] = new TopicImage(topic, partitions.ToImmutable());
            changes.TopicGrown(topic.Name, topic.TopicId, before, partitions.Length, offset);
            return;
        }

        if (current is not null)
        {
            // A record for a new topic id under a live name: the old topic is gone.
            names.Remove(current.Topic.TopicId);
            edited.Remove(topic.Name);
        }

        topics[topic.Name] = new TopicImage(topic, [.. topic.InitialPartitions]);
        names[topic.TopicId] = topic.Name;
        changes.TopicCreated(topic.Name, topic.TopicId, topic.InitialPartitions.Count, offset, current?.Topic.TopicId);
    }
}
