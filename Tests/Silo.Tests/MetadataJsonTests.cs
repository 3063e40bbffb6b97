using System.Text.Json;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Silo.Tests;

public sealed class MetadataJsonTests
{
    private static readonly PartitionRecord Sample = new(
        Guid.Parse("6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10"), "orders", new PartitionState(7, [3, 1, 2], [1, 2], 1, 4, 9), "leader-elected", 12);

    [Fact]
    public void A_partition_record_is_written_byte_for_byte_as_the_reflection_based_serializer_writes_it()
    {
        var compiled = Records.Partition(Sample).Payload;
        var reflected = JsonSerializer.SerializeToUtf8Bytes(Sample, MetadataImage.Json);
        Assert.Equal(reflected, compiled);
    }

    [Fact]
    public void A_partition_record_written_either_way_reads_back_equal()
    {
        var reflected = JsonSerializer.SerializeToUtf8Bytes(Sample, MetadataImage.Json);
        var read = JsonSerializer.Deserialize(reflected, MetadataJsonContext.Default.PartitionRecord)!;
        Assert.Equal(Sample with { State = null! }, read with { State = null! });
        Assert.Equal([3, 1, 2], read.State.Replicas);
        Assert.Equal([1, 2], read.State.Isr);
        Assert.Equal((7, 1, 4, 9), (read.State.Partition, read.State.Leader, read.State.LeaderEpoch, read.State.PartitionEpoch));

        // Older or hand-written records: property names in any case, as the web defaults read them.
        var pascal = """{"TopicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","Topic":"orders","State":{"Partition":7,"Replicas":[3,1,2],"Isr":[1,2],"Leader":1,"LeaderEpoch":4,"PartitionEpoch":9},"Change":"leader-elected","ControllerEpoch":12}"""u8.ToArray();
        var fromPascal = JsonSerializer.Deserialize(pascal, MetadataJsonContext.Default.PartitionRecord)!;
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(read, MetadataImage.Json), JsonSerializer.SerializeToUtf8Bytes(fromPascal, MetadataImage.Json));
    }
}
