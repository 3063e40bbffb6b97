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

    [Fact]
    public void Records_as_the_silos_write_them_are_read_by_the_direct_reader_exactly_as_the_serializer_reads_them()
    {
        var random = new Random(20261123);
        PartitionState State(int partition)
        {
            var replicas = Enumerable.Range(1, random.Next(1, 20)).Select(_ => random.Next(0, 1_000_000)).ToArray();
            return new PartitionState(partition, replicas, replicas.Take(random.Next(0, replicas.Length + 1)).ToArray(),
                random.Next(-1, 1000), random.Next(0, int.MaxValue), random.Next(0, int.MaxValue));
        }

        for (var i = 0; i < 300; i++)
        {
            var partition = new PartitionRecord(Guid.NewGuid(), $"topic.{i}-\u00e9\"quoted\"", State(random.Next(0, 100_000)), i % 2 == 0 ? "isr-changed" : "leader-elected", random.NextInt64(0, long.MaxValue));
            var bytes = Records.Partition(partition).Payload;
            Assert.True(MetadataRecordReader.TryReadPartition(bytes, out var direct));
            Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(JsonSerializer.Deserialize(bytes, MetadataJsonContext.Default.PartitionRecord), MetadataImage.Json),
                JsonSerializer.SerializeToUtf8Bytes(direct, MetadataImage.Json));

            var topic = new TopicRecord($"t{i}", Guid.NewGuid(), (short)random.Next(1, 8),
                Enumerable.Range(0, random.Next(0, 6)).ToDictionary(c => $"config.{c}", c => c % 2 == 0 ? $"{random.Next()}" : "a \"value\" with \\ escapes"),
                Enumerable.Range(0, random.Next(0, 40)).Select(State).ToList(), Deleted: i % 7 == 0, i % 3 == 0 ? "created" : "configs-changed");
            var topicBytes = JsonSerializer.SerializeToUtf8Bytes(topic, MetadataImage.Json);
            Assert.True(MetadataRecordReader.TryReadTopic(topicBytes, out var directTopic));
            Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(JsonSerializer.Deserialize<TopicRecord>(topicBytes, MetadataImage.Json), MetadataImage.Json),
                JsonSerializer.SerializeToUtf8Bytes(directTopic, MetadataImage.Json));
        }
    }

    [Theory]
    [InlineData("""{"TopicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","Topic":"orders","State":{"Partition":7,"Replicas":[3,1,2],"Isr":[1,2],"Leader":1,"LeaderEpoch":4,"PartitionEpoch":9},"Change":"leader-elected","ControllerEpoch":12}""")]
    [InlineData("""{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","topic":"orders","state":{"partition":"7","replicas":[3,1,2],"isr":[1,2],"leader":1,"leaderEpoch":4,"partitionEpoch":9},"change":"leader-elected","controllerEpoch":12}""")]
    [InlineData("""{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","topic":"orders","state":{"partition":7,"replicas":[3,1,2],"isr":null,"leader":1,"leaderEpoch":4,"partitionEpoch":9},"change":"leader-elected","controllerEpoch":12}""")]
    [InlineData("""{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","topic":"orders","state":{"partition":7,"replicas":[3,1,2],"isr":[1,2],"leader":1,"leaderEpoch":4,"partitionEpoch":9},"change":"leader-elected","controllerEpoch":12,"addedLater":true}""")]
    [InlineData("""{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","topic":"orders","state":{"partition":7,"replicas":[3,1,2],"isr":[1,2],"leader":1,"leaderEpoch":4,"partitionEpoch":9},"change":"leader-elected"}""")]
    public void A_partition_record_in_another_form_is_left_to_the_serializer_and_read_as_it_reads_it(string json)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        Assert.False(MetadataRecordReader.TryReadPartition(bytes, out _));
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(JsonSerializer.Deserialize(bytes, MetadataJsonContext.Default.PartitionRecord), MetadataImage.Json),
            JsonSerializer.SerializeToUtf8Bytes(MetadataRecordReader.ReadPartition(bytes), MetadataImage.Json));
    }

    [Theory]
    [InlineData("""{"name":"t","topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","replicationFactor":3,"configs":{"a":null},"initialPartitions":[],"deleted":false,"change":"created"}""")]
    [InlineData("""{"Name":"t","TopicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","ReplicationFactor":3,"Configs":{},"InitialPartitions":[],"Deleted":false,"Change":"created"}""")]
    [InlineData("""{"name":"t","topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","replicationFactor":"3","configs":{},"initialPartitions":[],"deleted":false,"change":"created"}""")]
    [InlineData("""{"name":"t","topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","replicationFactor":3,"configs":{"a":"1","a":"2"},"initialPartitions":[],"deleted":false,"change":"created"}""")]
    public void A_topic_record_in_another_form_is_left_to_the_serializer_and_read_as_it_reads_it(string json)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        Assert.False(MetadataRecordReader.TryReadTopic(bytes, out _));
        Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(JsonSerializer.Deserialize<TopicRecord>(bytes, MetadataImage.Json), MetadataImage.Json),
            JsonSerializer.SerializeToUtf8Bytes(MetadataRecordReader.ReadTopic(bytes), MetadataImage.Json));
    }

    [Fact]
    public void Broken_json_fails_as_the_serializer_fails_it()
    {
        var bytes = """"{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10","topic":"orders","state":{"partition":7""""u8.ToArray();
        Assert.False(MetadataRecordReader.TryReadPartition(bytes, out _));
        Assert.ThrowsAny<JsonException>(() => MetadataRecordReader.ReadPartition(bytes));

        // A value of the wrong kind whose inside looks like the record's own properties is not mistaken for them.
        var nested = """{"topic":"orders","state":{"partition":7,"replicas":[3,1,2],"isr":[1,2],"leader":1,"leaderEpoch":4,"partitionEpoch":9},"change":"leader-elected","controllerEpoch":12,"topicId":{"topicId":"6f1c2a9e-4b1d-4e8f-9a51-0c3d2b7e8f10"}}"""u8.ToArray();
        Assert.False(MetadataRecordReader.TryReadPartition(nested, out _));
        Assert.ThrowsAny<JsonException>(() => MetadataRecordReader.ReadPartition(nested));
    }
}
