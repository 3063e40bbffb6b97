using System.Text.Json;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// Reads the records every silo's image applies most often (partition and topic changes) straight from their bytes.
/// The serializer's own readers allocate a frame stack for every nested object and an argument buffer for every
/// record-type constructor, which at tens of thousands of records a second on every silo was a fifth of a silo's
/// garbage (BENCHMARKS.md, 2026-11-23). These readers take only the form the silos write (camelCase names, numbers
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

    internal static bool TryReadPartition(ReadOnlySpan<byte> payload, out PartitionRecord record)
    {
        record = null!;
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            Guid? topicId = null;
            string? topic = null, change = null;
            PartitionState? state = null;
            long? controllerEpoch = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("topicId"u8))
                {
                    if (!TryReadGuid(ref reader, out var id))
                    {
                        return false;
                    }

                    topicId = id;
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
                    if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var epoch))
                    {
                        return false;
                    }

                    controllerEpoch = epoch;
                }
                else
                {
                    return false;
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()
                || topicId is null || topic is null || state is null || change is null || controllerEpoch is null)
            {
                return false;
            }

            record = new PartitionRecord(topicId.Value, topic, state, change, controllerEpoch.Value);
            return true;
        }
        catch (JsonException)
        {
            return false; // Not JSON this reader takes: the serializer reads it, or says what is wrong with it.
        }
    }

    internal static bool TryReadTopic(ReadOnlySpan<byte> payload, out TopicRecord record)
    {
        record = null!;
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            string? name = null, change = null;
            Guid? topicId = null;
            short? replicationFactor = null;
            Dictionary<string, string>? configs = null;
            List<PartitionState>? partitions = null;
            bool? deleted = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("name"u8))
                {
                    name = ReadString(ref reader);
                }
                else if (reader.ValueTextEquals("topicId"u8))
                {
                    if (!TryReadGuid(ref reader, out var id))
                    {
                        return false;
                    }

                    topicId = id;
                }
                else if (reader.ValueTextEquals("replicationFactor"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt16(out var factor))
                    {
                        return false;
                    }

                    replicationFactor = factor;
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
                    if (!reader.Read() || reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                    {
                        return false;
                    }

                    deleted = reader.GetBoolean();
                }
                else if (reader.ValueTextEquals("change"u8))
                {
                    change = ReadString(ref reader);
                }
                else
                {
                    return false;
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()
                || name is null || topicId is null || replicationFactor is null || configs is null || partitions is null
                || deleted is null || change is null)
            {
                return false;
            }

            record = new TopicRecord(name, topicId.Value, replicationFactor.Value, configs, partitions, deleted.Value, change);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool TryReadGuid(ref Utf8JsonReader reader, out Guid value)
    {
        value = default;
        return reader.Read() && reader.TokenType == JsonTokenType.String && reader.TryGetGuid(out value);
    }

    /// <summary>A non-null string, or null when the value is anything else (the caller then lets the serializer read).</summary>
    private static string? ReadString(ref Utf8JsonReader reader)
        => reader.Read() && reader.TokenType == JsonTokenType.String ? reader.GetString() : null;

    private static int? ReadInt32(ref Utf8JsonReader reader)
        => reader.Read() && reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : null;

    private static PartitionState? ReadState(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        int? partition = null, leader = null, leaderEpoch = null, partitionEpoch = null;
        int[]? replicas = null, isr = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
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
                return null;
            }
        }

        return reader.TokenType == JsonTokenType.EndObject && partition is { } p && replicas is not null && isr is not null
               && leader is { } l && leaderEpoch is { } le && partitionEpoch is { } pe
            ? new PartitionState(p, replicas, isr, l, le, pe)
            : null;
    }

    private static List<PartitionState>? ReadStates(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            return null;
        }

        var states = new List<PartitionState>();
        while (true)
        {
            // ReadState reads the next token itself, so look at it through a copy first.
            var peek = reader;
            if (!peek.Read())
            {
                return null;
            }

            if (peek.TokenType == JsonTokenType.EndArray)
            {
                reader = peek;
                return states;
            }

            if (ReadState(ref reader) is not { } state)
            {
                return null;
            }

            states.Add(state);
        }
    }

    /// <summary>A broker list: a handful of ids, read into an array of exactly their number.</summary>
    private static int[]? ReadInt32Array(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            return null;
        }

        Span<int> buffer = stackalloc int[16];
        List<int>? overflow = null;
        var count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var value))
            {
                return null;
            }

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
            return null;
        }

        var result = new int[count];
        buffer[..Math.Min(count, buffer.Length)].CopyTo(result);
        overflow?.CopyTo(result, buffer.Length);
        return result;
    }

    private static Dictionary<string, string>? ReadConfigs(ref Utf8JsonReader reader)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        var configs = new Dictionary<string, string>();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            if (ReadString(ref reader) is not { } value || !configs.TryAdd(key, value))
            {
                return null; // A null value or a repeated key: as the serializer decides.
            }
        }

        return reader.TokenType == JsonTokenType.EndObject ? configs : null;
    }
}
