using OrleansMeta.Client.Models;
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

    public static PartitionInfo Partition(PartitionState state)
        => new(state.Partition, state.Leader, state.LeaderEpoch, state.PartitionEpoch, state.Replicas, state.Isr);

    public static TopicDescription Topic(TopicImage topic) => new(
        topic.Topic.Name,
        topic.Topic.TopicId,
        topic.Topic.ReplicationFactor,
        topic.Topic.Configs,
        topic.Partitions.Select(Partition).ToList());

    /// <summary>
    /// A topic as just written: partitions this silo's image already holds in their current state, the others (all of
    /// a new topic, the added ones after AddPartitions) as the record creates them.
    /// </summary>
    public static TopicDescription Topic(TopicRecord topic, TopicImage? image)
    {
        var known = image is not null && image.Topic.TopicId == topic.TopicId ? image.Partitions : [];
        var partitions = known.Take(topic.InitialPartitions.Count).Concat(topic.InitialPartitions.Skip(known.Length)).Select(Partition).ToList();
        return new(topic.Name, topic.TopicId, topic.ReplicationFactor, topic.Configs, partitions);
    }
}
