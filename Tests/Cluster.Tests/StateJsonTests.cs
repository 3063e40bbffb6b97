using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Partition and topic states are stored with compiled JSON: the same bytes reflection writes, so states
/// stored before and after read alike.</summary>
public sealed class StateJsonTests
{
    private static readonly JsonSerializerOptions Reflection = new(JsonSerializerDefaults.Web);

    private static readonly PartitionGrainState Partition = new()
    {
        State = new PartitionState(7, [3, 1, 2], [3, 2], 3, 12, 40),
    };

    private static readonly TopicGrainState Topic = new()
    {
        Current = new TopicRecord("orders.eu", Guid.Parse("6f1c3a52-0b8e-4c35-9d37-2f0a3c1b9e01"), 3,
            new Dictionary<string, string> { ["retention.ms"] = "86400000", ["cleanup.policy"] = "compact,delete" },
            [new PartitionState(0, [1, 2, 3], [1, 2, 3], 1, 0, 0), new PartitionState(1, [2, 3, 1], [2], -1, 4, 9)], false, "created"),
    };

    [Fact]
    public void The_product_grains_store_partition_and_topic_states_with_compiled_json_and_the_bytes_reflection_writes()
    {
        var services = new ServiceCollection();
        services.AddGrainRuntime().UseInMemoryStorage().AddMetaGrains();
        using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<GrainStateSerializer>().Options;

        Assert.IsAssignableFrom<JsonSerializerContext>(options.GetTypeInfo(typeof(PartitionGrainState)).OriginatingResolver);
        Assert.IsAssignableFrom<JsonSerializerContext>(options.GetTypeInfo(typeof(TopicGrainState)).OriginatingResolver);

        // Other state types still go through reflection.
        Assert.IsNotAssignableFrom<JsonSerializerContext>(options.GetTypeInfo(typeof(Dictionary<string, long>)).OriginatingResolver);

        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(Partition, Reflection), JsonSerializer.SerializeToUtf8Bytes(Partition, options));
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(Topic, Reflection), JsonSerializer.SerializeToUtf8Bytes(Topic, options));

        var partition = JsonSerializer.Deserialize<PartitionGrainState>(JsonSerializer.SerializeToUtf8Bytes(Partition, Reflection), options)!;
        Assert.Equal(Partition.State! with { Replicas = [], Isr = [] }, partition.State! with { Replicas = [], Isr = [] });
        Assert.Equal(Partition.State.Replicas, partition.State.Replicas);
        Assert.Equal(Partition.State.Isr, partition.State.Isr);

        var topic = JsonSerializer.Deserialize<TopicGrainState>(JsonSerializer.SerializeToUtf8Bytes(Topic, Reflection), options)!;
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(Topic, Reflection), JsonSerializer.SerializeToUtf8Bytes(topic, Reflection));
    }
}
