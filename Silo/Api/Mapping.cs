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

    /// <summary>A topic as just written: its partitions as the topic record holds them.</summary>
    public static TopicDescription Topic(TopicRecord topic, TopicImage? image) => image is not null && image.Topic.TopicId == topic.TopicId
        ? Topic(image with { Topic = topic })
        : new(topic.Name, topic.TopicId, topic.ReplicationFactor, topic.Configs, topic.InitialPartitions.Select(Partition).ToList());
}
