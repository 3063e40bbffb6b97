using System.Text.Json;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// Reads the records every silo's image applies most often (partition and topic changes) straight from their bytes.
/// The serializer's own readers allocate a frame stack for every nested object and an argument buffer for every
/// record-type constructor: 7-9% of the garbage of three silos under batched writes, where every silo applies every
/// record (BENCHMARKS.md, 2026-11-23). These readers take only the form the silos write (camelCase names, numbers
/// as numbers, no nulls); anything else (a property they do not know, another case, a missing or null value) is read
/// by the serializer instead, with the same options as <see cref="MetadataImage.Json"/>, so what a record means never
/// depends on which reader read it.
/// </summary>
internal static class MetadataRecordReader
{
    public static PartitionRecord ReadPartition(byte[] payload)
        => TryReadPartition(payload, out var record) ? record : JsonSerializer.Deserialize(payload, MetadataJsonContext.Default.PartitionRecord)!;

    public static TopicRecord ReadTopic(byte[] payload)
        => TryReadTopic(payload, out var record) ? record : JsonSerializer.Deserialize<TopicRecord>(payload, MetadataImage.Json)!;

    internal static bool TryReadPartition(ReadOnlySpan<byte> payload, out PartitionRecord record) => TryRead(payload, ReadPartitionBody, out record);

    internal static bool TryReadTopic(ReadOnlySpan<byte> payload, out TopicRecord record) => TryRead(payload, ReadTopicBody, out record);

    // Every Read* below reads one value of the form the silos write, or throws JsonException, which makes TryRead
    // return false and leaves the whole record to the serializer.
    private delegate T BodyReader<out T>(ref Utf8JsonReader reader);

    /// <summary>Reads one record object with <paramref name="body"/>, which starts on its opening brace; nothing may follow.</summary>
    private static bool TryRead<T>(ReadOnlySpan<byte> payload, BodyReader<T> body, out T record)
        where T : class
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            Expect(ref reader, JsonTokenType.StartObject);
            record = body(ref reader);
            if (!reader.Read())
            {
                return true;
            }
        }
        catch (JsonException)
        {
        }

        record = null!;
        return false;
    }

    private static PartitionRecord ReadPartitionBody(ref Utf8JsonReader reader)
    {
        Guid? topicId = null;
        string? topic = null, change = null;
        PartitionState? state = null;
        long? controllerEpoch = null;
        while (NextProperty(ref reader))
        {
            if (reader.ValueTextEquals("topicId"u8))
            {
                topicId = ReadGuid(ref reader);
            }
            else if (reader.ValueTextEquals("topic"u8))
            {
                topic = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("state"u8))
            {
                state = ReadState(ref reader);
            }
            else if (reader.ValueTextEquals("change"u8))
            {
                change = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("controllerEpoch"u8))
            {
                controllerEpoch = ReadInt64(ref reader);
            }
            else
            {
                throw NotOurForm();
            }
        }

        return topicId is { } id && topic is not null && state is not null && change is not null && controllerEpoch is { } epochValue
            ? new PartitionRecord(id, topic, state, change, epochValue)
            : throw NotOurForm();
    }

    private static TopicRecord ReadTopicBody(ref Utf8JsonReader reader)
    {
        string? name = null, change = null;
        Guid? topicId = null;
        short? replicationFactor = null;
        Dictionary<string, string>? configs = null;
        List<PartitionState>? partitions = null;
        bool? deleted = null;
        while (NextProperty(ref reader))
        {
            if (reader.ValueTextEquals("name"u8))
            {
                name = ReadString(ref reader);
            }
            else if (reader.ValueTextEquals("topicId"u8))
            {
                topicId = ReadGuid(ref reader);
            }
            else if (reader.ValueTextEquals("replicationFactor"u8))
            {
                replicationFactor = ReadInt16(ref reader);
            }
            else if (reader.ValueTextEquals("configs"u8))
            {
                configs = ReadConfigs(ref reader);
            }
            else if (reader.ValueTextEquals("initialPartitions"u8))
            {
                partitions = ReadStates(ref reader);
            }
            else if (reader.ValueTextEquals("deleted"u8))
            {
                deleted = ReadBoolean(ref reader);
            }
            else if (reader.ValueTextEquals("change"u8))
            {
                change = ReadString(ref reader);
            }
            else
            {
                throw NotOurForm();
            }
        }

        return name is not null && topicId is { } id && replicationFactor is { } factorValue && configs is not null && partitions is not null
               && deleted is { } deletedValue && change is not null
            ? new TopicRecord(name, id, factorValue, configs, partitions, deletedValue, change)
            : throw NotOurForm();
    }

    private static JsonException NotOurForm() => new("Not the form the silos write.");

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType token)
    {
        if (!reader.Read() || reader.TokenType != token)
        {
            throw NotOurForm();
        }
    }

    /// <summary>Moves to the next property name of the current object; false at the object's end.</summary>
    private static bool NextProperty(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw NotOurForm();
        }

        return reader.TokenType switch
        {
            JsonTokenType.PropertyName => true,
            JsonTokenType.EndObject => false,
            _ => throw NotOurForm(),
        };
    }

    private static Guid ReadGuid(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.String);
        return reader.TryGetGuid(out var value) ? value : throw NotOurForm();
    }

    private static string ReadString(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.String);
        return reader.GetString()!;
    }

    private static short ReadInt16(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.Number);
        return reader.TryGetInt16(out var value) ? value : throw NotOurForm();
    }

    private static int ReadInt32(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.Number);
        return reader.TryGetInt32(out var value) ? value : throw NotOurForm();
    }

    private static long ReadInt64(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.Number);
        return reader.TryGetInt64(out var value) ? value : throw NotOurForm();
    }

    private static bool ReadBoolean(ref Utf8JsonReader reader)
        => reader.Read() && reader.TokenType is JsonTokenType.True or JsonTokenType.False ? reader.GetBoolean() : throw NotOurForm();

    /// <summary>A partition's state; the reader is before its start.</summary>
    private static PartitionState ReadState(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject);
        return ReadStateBody(ref reader);
    }

    /// <summary>A partition's state; the reader is on its start.</summary>
    private static PartitionState ReadStateBody(ref Utf8JsonReader reader)
    {
        int? partition = null, leader = null, leaderEpoch = null, partitionEpoch = null;
        int[]? replicas = null, isr = null;
        while (NextProperty(ref reader))
        {
            if (reader.ValueTextEquals("partition"u8))
            {
                partition = ReadInt32(ref reader);
            }
            else if (reader.ValueTextEquals("replicas"u8))
            {
                replicas = ReadInt32Array(ref reader);
            }
            else if (reader.ValueTextEquals("isr"u8))
            {
                isr = ReadInt32Array(ref reader);
            }
            else if (reader.ValueTextEquals("leader"u8))
            {
                leader = ReadInt32(ref reader);
            }
            else if (reader.ValueTextEquals("leaderEpoch"u8))
            {
                leaderEpoch = ReadInt32(ref reader);
            }
            else if (reader.ValueTextEquals("partitionEpoch"u8))
            {
                partitionEpoch = ReadInt32(ref reader);
            }
            else
            {
                throw NotOurForm();
            }
        }

        return partition is { } p && replicas is not null && isr is not null && leader is { } l && leaderEpoch is { } le && partitionEpoch is { } pe
            ? new PartitionState(p, replicas, isr, l, le, pe)
            : throw NotOurForm();
    }

    private static List<PartitionState> ReadStates(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartArray);
        var states = new List<PartitionState>();
        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            states.Add(ReadStateBody(ref reader));
        }

        return reader.TokenType == JsonTokenType.EndArray ? states : throw NotOurForm();
    }

    /// <summary>A broker list: a handful of ids, read into an array of exactly their number.</summary>
    private static int[] ReadInt32Array(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartArray);
        Span<int> buffer = stackalloc int[16];
        List<int>? overflow = null;
        var count = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.Number)
        {
            var value = reader.TryGetInt32(out var id) ? id : throw NotOurForm();
            if (count < buffer.Length)
            {
                buffer[count] = value;
            }
            else
            {
                (overflow ??= []).Add(value);
            }

            count++;
        }

        if (reader.TokenType != JsonTokenType.EndArray)
        {
            throw NotOurForm();
        }

        var result = new int[count];
        buffer[..Math.Min(count, buffer.Length)].CopyTo(result);
        overflow?.CopyTo(result, buffer.Length);
        return result;
    }

    private static Dictionary<string, string> ReadConfigs(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject);
        var configs = new Dictionary<string, string>();
        while (NextProperty(ref reader))
        {
            var key = reader.GetString()!;
            if (!configs.TryAdd(key, ReadString(ref reader)))
            {
                throw NotOurForm(); // A repeated key: as the serializer decides.
            }
        }

        return configs;
    }
}
