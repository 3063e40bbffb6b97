using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Watch;

/// <summary>
/// A log record as watchers receive it: its SSE event, encoded once and sent as bytes to every watcher, and what
/// filters look at (its topic, the brokers it names), decoded once when a filter first asks.
/// </summary>
public sealed class WatchRecord
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private RecordFacts? _facts;
    private byte[]? _frame;

    public WatchRecord(LoggedRecord record)
    {
        Record = record;
    }

    public LoggedRecord Record { get; }

    /// <summary>The whole SSE event: <c>id:</c> offset, <c>event:</c> type, <c>data:</c> a <see cref="WatchEvent"/>.
    /// Encoded when a watcher first asks, not when the record enters the ring: a failover puts tens of thousands of
    /// records in the ring at once, most of which no watcher may ever read. Two watchers asking at once may both
    /// encode it; they get equal bytes.</summary>
    public byte[] Frame => _frame ??= WatchFrames.Record(Record);

    /// <summary>Bytes held for this record once its event is encoded (its payload twice, its key and type, and the
    /// event's envelope), counted the same whether or not it is encoded yet.</summary>
    public long Size => (2L * Record.Payload.Length) + Record.Key.Length + Record.Type.Length + 256;

    public RecordFacts Facts => _facts ??= RecordFacts.Of(Record.Type, Record.Key, Record.Payload);

    /// <summary>The record's payload as watchers see it: a broker's <c>registered</c> record gets the epoch the images
    /// give it (its own offset, unknown when it was written).</summary>
    internal static ReadOnlySpan<byte> PublicPayload(LoggedRecord record)
    {
        if (record.Type == RecordTypes.Broker && record.Payload.Length > 2)
        {
            var broker = JsonSerializer.Deserialize<BrokerRecord>(record.Payload, Json);
            if (broker is { Change: BrokerChanges.Registered })
            {
                return JsonSerializer.SerializeToUtf8Bytes(broker with { BrokerEpoch = record.Offset, RegistrationOffset = record.Offset }, Json);
            }
        }

        return record.Payload;
    }

    internal static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Json);
}

/// <summary>What a record concerns, for filters: its topic (topic and partition records), the brokers it names
/// (a broker record's broker; the replicas, ISR and leader of partitions), and its consumer group (group and
/// group-member records).</summary>
public sealed record RecordFacts(string? Topic, IReadOnlySet<int> Brokers, string? Group = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly IReadOnlySet<int> None = new HashSet<int>();

    public static RecordFacts Of(string type, string key, byte[] payload)
    {
        try
        {
            switch (type)
            {
                case RecordTypes.Broker:
                    return new RecordFacts(null, int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? new HashSet<int> { id } : None);
                case RecordTypes.Topic:
                    var topic = JsonSerializer.Deserialize<TopicRecord>(payload, Json);
                    return new RecordFacts(key, Named(topic?.InitialPartitions ?? []));
                case RecordTypes.Partition:
                    var partition = JsonSerializer.Deserialize<PartitionRecord>(payload, Json);
                    return partition is null ? new RecordFacts(null, None) : new RecordFacts(partition.Topic, Named([partition.State]));
                case RecordTypes.Group:
                    return new RecordFacts(null, None, key);
                case RecordTypes.GroupMember:
                    // The key is "groupId/memberId", and group ids hold no '/'.
                    var slash = key.IndexOf('/', StringComparison.Ordinal);
                    return new RecordFacts(null, None, slash < 0 ? key : key[..slash]);
            }
        }
        catch (JsonException)
        {
            // A record this version cannot read concerns nothing a filter names.
        }

        return new RecordFacts(null, None);
    }

    public static IReadOnlySet<int> Named(IEnumerable<PartitionState> partitions)
    {
        var brokers = new HashSet<int>();
        foreach (var p in partitions)
        {
            brokers.UnionWith(p.Replicas);
            brokers.UnionWith(p.Isr);
            if (p.Leader >= 0)
            {
                brokers.Add(p.Leader);
            }
        }

        return brokers;
    }
}

/// <summary>Encodes SSE events. Records carry <c>id:</c> (their offset) so <c>Last-Event-ID</c> resumes after them;
/// snapshot items and <c>snapshot-start</c> carry none, so a stream broken mid-snapshot resumes before it.</summary>
internal static class WatchFrames
{
    public static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    public static byte[] Record(LoggedRecord record)
        => Event(record.Offset, record.Type, WatchEventKinds.Record, record.Offset, record.Type, record.Key, WatchRecord.PublicPayload(record), record.WrittenAt);

    public static byte[] SnapshotItem(long offset, string type, string key, byte[] record)
        => Event(null, "snapshot", WatchEventKinds.Snapshot, offset, type, key, record, null);

    public static byte[] Marker(string kind, long offset, bool withId)
        => Event(withId ? offset : null, kind, kind, offset, null, null, default, null);

    public static byte[] CutOff(WatchCutOff cut)
    {
        var data = JsonSerializer.SerializeToUtf8Bytes(cut, JsonSerializerOptions.Web);
        return [.. "event: cut-off\ndata: "u8, .. data, .. "\n\n"u8];
    }

    private static byte[] Event(long? id, string name, string kind, long offset, string? type, string? key, ReadOnlySpan<byte> record, DateTimeOffset? writtenAt)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + record.Length);
        var header = (id is { } i ? "id: " + i.ToString(CultureInfo.InvariantCulture) + "\n" : "") + "event: " + name + "\ndata: ";
        buffer.Write(Encoding.UTF8.GetBytes(header));
        using (var json = new Utf8JsonWriter(buffer))
        {
            // The shape of WatchEvent (camelCase, as the API's JSON), written by hand so a record's payload is copied, not re-parsed.
            json.WriteStartObject();
            json.WriteString("kind"u8, kind);
            json.WriteNumber("offset"u8, offset);
            WriteStringOrNull(json, "type"u8, type);
            WriteStringOrNull(json, "key"u8, key);
            if (record.IsEmpty)
            {
                json.WriteNull("record"u8);
            }
            else
            {
                json.WritePropertyName("record"u8);
                json.WriteRawValue(record, skipInputValidation: true);
            }

            if (writtenAt is { } at)
            {
                json.WriteString("writtenAt"u8, at);
            }
            else
            {
                json.WriteNull("writtenAt"u8);
            }

            json.WriteEndObject();
        }

        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
