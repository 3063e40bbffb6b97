using System.Text.Json;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains;

/// <summary>Builds metadata log records from the entities' new state.</summary>
internal static class Records
{
    public static LogRecord Broker(BrokerRecord broker)
        => new(RecordTypes.Broker, broker.BrokerId.ToString(System.Globalization.CultureInfo.InvariantCulture), Serialize(broker));

    public static LogRecord Topic(TopicRecord topic) => new(RecordTypes.Topic, topic.Name, Serialize(topic));

    public static LogRecord Partition(PartitionRecord partition)
        => new(RecordTypes.Partition, PartitionKeys.For(partition.TopicId, partition.State.Partition),
            JsonSerializer.SerializeToUtf8Bytes(partition, MetadataJsonContext.Default.PartitionRecord));

    public static LogRecord Controller(ControllerRecord controller) => new(RecordTypes.Controller, IControllerGrain.Key, Serialize(controller));

    private static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, MetadataImage.Json);
}
