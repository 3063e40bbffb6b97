using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Metadata;

/// <summary>An image read from a snapshot, with the last record it applied.</summary>
/// <param name="Image">The image at the snapshot's offset.</param>
/// <param name="LastRecord">The record at that offset as the log held it when the snapshot was taken (<c>null</c> for an
/// empty image): a tailer that starts from the snapshot checks the log still holds it, as it checks its own last record.</param>
public sealed record RestoredImage(MetadataImage Image, LoggedRecord? LastRecord);

/// <summary>
/// The stored form of a <see cref="MetadataImage"/>: what a snapshot holds. Stable across versions: the layout is
/// named by <see cref="FormatVersion"/>, written with every snapshot; a silo reads every version it knows and skips the
/// others (falling back to an older snapshot, or to replaying the log).
/// </summary>
/// <remarks>
/// Format 1: the ASCII bytes <c>OMIS</c>, a little-endian int32 version (1), then a zlib stream of: the image offset
/// (int64); the last record (a flag, then offset, type, key, payload, written-at ticks); the controller (a flag, then its
/// record as JSON); the brokers (count, then for each its registration offset and its record as JSON); the topics
/// (count, then for each its record as JSON without its initial partitions, the initial partitions, and the current
/// partitions); and an end marker. Entities with few instances and fields that change with the product (brokers,
/// topic records with their configs) are JSON in the same shape as their log records, so fields added later read as
/// they do from the log; partitions, a million of them, are packed: partition, replicas, ISR, leader, leader epoch and
/// partition epoch as 7-bit-encoded integers. Counts and strings use <see cref="BinaryWriter"/>'s encodings.
/// Format 2 adds, after the topics, the consumer groups (count, then for each its <c>group</c> record as JSON, its
/// member count, and each member's description as JSON); format 1 reads as an image without groups. A change to what a
/// partition holds needs format 3 (and readers for the older formats kept).
/// </remarks>
public static class MetadataImageSnapshot
{
    /// <summary>The format this version writes.</summary>
    public const int FormatVersion = 2;

    private const int Magic = 0x53494D4F; // "OMIS", little-endian
    private const int EndMarker = 0x444E4553; // "SEND"

    /// <summary>True when this version can read snapshots of <paramref name="formatVersion"/>.</summary>
    public static bool CanRead(int formatVersion) => formatVersion is 1 or 2;

    /// <summary>The stored form of <paramref name="image"/>, whose last applied record is <paramref name="lastRecord"/>.</summary>
    public static byte[] Serialize(MetadataImage image, LoggedRecord? lastRecord)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (lastRecord is not null && lastRecord.Offset != image.Offset)
        {
            throw new ArgumentException($"The last record ({lastRecord.Offset}) is not the image's ({image.Offset}).", nameof(lastRecord));
        }

        using var output = new MemoryStream();
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], FormatVersion);
        output.Write(header);
        using (var zlib = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = new BinaryWriter(new BufferedStream(zlib, 1 << 16)))
        {
            writer.Write(image.Offset);
            writer.Write(lastRecord is not null);
            if (lastRecord is not null)
            {
                writer.Write(lastRecord.Offset);
                writer.Write(lastRecord.Type);
                writer.Write(lastRecord.Key);
                WriteBytes(writer, lastRecord.Payload);
                writer.Write(lastRecord.WrittenAt.UtcTicks);
            }

            writer.Write(image.Controller is not null);
            if (image.Controller is not null)
            {
                WriteBytes(writer, JsonSerializer.SerializeToUtf8Bytes(image.Controller, MetadataImage.Json));
            }

            // Sorted, so that equal images give equal bytes.
            writer.Write7BitEncodedInt(image.Brokers.Count);
            foreach (var broker in image.Brokers.Values.OrderBy(b => b.Record.BrokerId))
            {
                writer.Write(broker.RegistrationOffset);
                WriteBytes(writer, JsonSerializer.SerializeToUtf8Bytes(broker.Record, MetadataImage.Json));
            }

            writer.Write7BitEncodedInt(image.Topics.Count);
            foreach (var topic in image.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal))
            {
                WriteBytes(writer, JsonSerializer.SerializeToUtf8Bytes(topic.Topic with { InitialPartitions = [] }, MetadataImage.Json));
                WritePartitions(writer, topic.Topic.InitialPartitions);
                WritePartitions(writer, topic.Partitions);
            }

            writer.Write7BitEncodedInt(image.Groups.Count);
            foreach (var group in image.Groups.Values.OrderBy(g => g.Group.GroupId, StringComparer.Ordinal))
            {
                WriteBytes(writer, JsonSerializer.SerializeToUtf8Bytes(group.Group, MetadataImage.Json));
                writer.Write7BitEncodedInt(group.Members.Count);
                foreach (var member in group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal))
                {
                    WriteBytes(writer, JsonSerializer.SerializeToUtf8Bytes(member, MetadataImage.Json));
                }
            }

            writer.Write(EndMarker);
        }

        return output.ToArray();
    }

    /// <summary>The image stored in <paramref name="data"/>.</summary>
    /// <exception cref="NotSupportedException">The data is of a format this version cannot read.</exception>
    /// <exception cref="InvalidDataException">The data is not a well-formed snapshot.</exception>
    public static RestoredImage Deserialize(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8 || BinaryPrimitives.ReadInt32LittleEndian(data) != Magic)
        {
            throw new InvalidDataException("Not a metadata image snapshot.");
        }

        var version = BinaryPrimitives.ReadInt32LittleEndian(data[4..]);
        if (!CanRead(version))
        {
            throw new NotSupportedException($"Metadata image snapshot format {version} is not known to this version (it reads format {FormatVersion}).");
        }

        byte[] body;
        try
        {
            using var input = new MemoryStream(data[8..].ToArray(), writable: false);
            using var zlib = new ZLibStream(input, CompressionMode.Decompress);
            using var inflated = new MemoryStream();
            zlib.CopyTo(inflated);
            body = inflated.ToArray();
        }
        catch (IOException exception)
        {
            throw new InvalidDataException("The snapshot's compressed body is damaged.", exception);
        }

        try
        {
            return ReadBody(body, version);
        }
        catch (Exception exception) when (exception is EndOfStreamException or JsonException or FormatException or ArgumentException)
        {
            throw new InvalidDataException("The snapshot's body is not well-formed.", exception);
        }
    }

    private static RestoredImage ReadBody(byte[] body, int version)
    {
        using var reader = new BinaryReader(new MemoryStream(body, writable: false));
        var offset = reader.ReadInt64();
        LoggedRecord? last = null;
        if (reader.ReadBoolean())
        {
            last = new LoggedRecord(reader.ReadInt64(), reader.ReadString(), reader.ReadString(), ReadBytes(reader),
                new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero));
        }

        ControllerRecord? controller = reader.ReadBoolean()
            ? JsonSerializer.Deserialize<ControllerRecord>(ReadBytes(reader), MetadataImage.Json)
            : null;
        var brokers = new BrokerImage[reader.Read7BitEncodedInt()];
        for (var i = 0; i < brokers.Length; i++)
        {
            var registrationOffset = reader.ReadInt64();
            brokers[i] = new BrokerImage(JsonSerializer.Deserialize<BrokerRecord>(ReadBytes(reader), MetadataImage.Json)!, registrationOffset);
        }

        var topics = new TopicImage[reader.Read7BitEncodedInt()];
        for (var i = 0; i < topics.Length; i++)
        {
            var record = JsonSerializer.Deserialize<TopicRecord>(ReadBytes(reader), MetadataImage.Json)!;
            var initial = ReadPartitions(reader);
            topics[i] = new TopicImage(record with { InitialPartitions = initial }, [.. ReadPartitions(reader)]);
        }

        var groups = new GroupImage[version >= 2 ? reader.Read7BitEncodedInt() : 0];
        for (var i = 0; i < groups.Length; i++)
        {
            var group = GroupImage.Of(JsonSerializer.Deserialize<GroupRecord>(ReadBytes(reader), MetadataImage.Json)!);
            var members = group.Members.ToBuilder();
            for (var count = reader.Read7BitEncodedInt(); count > 0; count--)
            {
                var member = JsonSerializer.Deserialize<GroupMemberDescription>(ReadBytes(reader), MetadataImage.Json)!;
                members[member.MemberId] = member;
            }

            groups[i] = group with { Members = members.ToImmutable() };
        }

        if (reader.ReadInt32() != EndMarker || reader.BaseStream.Position != body.Length)
        {
            throw new InvalidDataException("The snapshot's body does not end where it should.");
        }

        if (last is not null && last.Offset != offset)
        {
            throw new InvalidDataException($"The snapshot's last record ({last.Offset}) is not at its offset ({offset}).");
        }

        return new RestoredImage(MetadataImage.Restore(offset, brokers, topics, controller, groups), last);
    }

    private static void WriteBytes(BinaryWriter writer, byte[] bytes)
    {
        writer.Write7BitEncodedInt(bytes.Length);
        writer.Write(bytes);
    }

    private static byte[] ReadBytes(BinaryReader reader)
    {
        var length = reader.Read7BitEncodedInt();
        var bytes = reader.ReadBytes(length);
        return bytes.Length == length ? bytes : throw new EndOfStreamException();
    }

    private static void WritePartitions(BinaryWriter writer, IReadOnlyList<PartitionState> partitions)
    {
        writer.Write7BitEncodedInt(partitions.Count);
        foreach (var partition in partitions)
        {
            writer.Write7BitEncodedInt(partition.Partition);
            WriteInts(writer, partition.Replicas);
            WriteInts(writer, partition.Isr);
            writer.Write7BitEncodedInt(partition.Leader);
            writer.Write7BitEncodedInt(partition.LeaderEpoch);
            writer.Write7BitEncodedInt(partition.PartitionEpoch);
        }
    }

    private static PartitionState[] ReadPartitions(BinaryReader reader)
    {
        var partitions = new PartitionState[reader.Read7BitEncodedInt()];
        for (var i = 0; i < partitions.Length; i++)
        {
            partitions[i] = new PartitionState(reader.Read7BitEncodedInt(), ReadInts(reader), ReadInts(reader),
                reader.Read7BitEncodedInt(), reader.Read7BitEncodedInt(), reader.Read7BitEncodedInt());
        }

        return partitions;
    }

    private static void WriteInts(BinaryWriter writer, IReadOnlyList<int> values)
    {
        writer.Write7BitEncodedInt(values.Count);
        foreach (var value in values)
        {
            writer.Write7BitEncodedInt(value);
        }
    }

    private static int[] ReadInts(BinaryReader reader)
    {
        var values = new int[reader.Read7BitEncodedInt()];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = reader.Read7BitEncodedInt();
        }

        return values;
    }
}
