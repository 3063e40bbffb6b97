using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Silo.Api;

/// <summary>From metadata records to the public API's shapes.</summary>
internal static class Mapping
{
    public static BrokerInfo Broker(BrokerImage broker) => new(
        broker.Record.BrokerId,
        broker.Record.IncarnationId,
        broker.Record.BrokerEpoch,
        broker.Record.Listeners.Select(l => new BrokerListener(l.Name, l.Host, l.Port, l.SecurityProtocol)).ToList(),
        broker.Record.Rack,
        broker.Record.State);

    /// <summary>A partition, with its replicas on fenced or unregistered brokers (as of <paramref name="image"/>) offline.</summary>
    public static PartitionInfo Partition(PartitionState state, MetadataImage image)
        => new(state.Partition, state.Leader, state.LeaderEpoch, state.PartitionEpoch, state.Replicas, state.Isr)
        {
            OfflineReplicas = Offline(state.Replicas, image),
        };

    public static TopicDescription Topic(TopicImage topic, MetadataImage image) => new(
        topic.Topic.Name,
        topic.Topic.TopicId,
        topic.Topic.ReplicationFactor,
        topic.Topic.Configs,
        topic.Partitions.Select(p => Partition(p, image)).ToList());

    /// <summary>
    /// A topic as just written: partitions this silo's image already holds in their current state, the others (all of
    /// a new topic, the added ones after AddPartitions) as the record creates them.
    /// </summary>
    public static TopicDescription Topic(TopicRecord topic, MetadataImage image)
    {
        var known = image.Topics.GetValueOrDefault(topic.Name) is { } held && held.Topic.TopicId == topic.TopicId ? held.Partitions : [];
        var partitions = known.Take(topic.InitialPartitions.Count).Concat(topic.InitialPartitions.Skip(known.Length)).Select(p => Partition(p, image)).ToList();
        return new(topic.Name, topic.TopicId, topic.ReplicationFactor, topic.Configs, partitions);
    }

    /// <summary>Every config this service knows for a topic: its own value (Kafka's DYNAMIC_TOPIC_CONFIG) or Kafka's
    /// default (DEFAULT_CONFIG).</summary>
    public static List<TopicConfigEntry> Configs(TopicRecord topic)
    {
        var configs = new List<TopicConfigEntry>(s_defaults.Length);
        foreach (var entry in s_defaults)
        {
            configs.Add(topic.Configs.TryGetValue(entry.Name, out var value) ? new TopicConfigEntry(entry.Name, value, false, "DYNAMIC_TOPIC_CONFIG") : entry);
        }

        return configs;
    }

    /// <summary>Every known config at its default, in name order: built once, since every config change answers with them.</summary>
    private static readonly TopicConfigEntry[] s_defaults =
        [.. TopicRules.KnownConfigs.Select(key => new TopicConfigEntry(key, TopicRules.DefaultOf(key), true, "DEFAULT_CONFIG"))];

    private static IReadOnlyList<int> Offline(IReadOnlyList<int> replicas, MetadataImage image)
    {
        List<int>? offline = null;
        foreach (var replica in replicas)
        {
            if (!image.Brokers.TryGetValue(replica, out var broker) || broker.IsFenced)
            {
                (offline ??= []).Add(replica);
            }
        }

        return offline ?? (IReadOnlyList<int>)[];
    }
}
