using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Chaos;

/// <summary>One row of the metadata_log table.</summary>
public sealed record LogEntry(long Offset, string Type, string Key, byte[] Payload);

/// <summary>A partition's state as one log record set it (a topic's initial partitions, or a partition record).</summary>
public sealed record PartitionVersion(long Offset, Guid TopicId, string Topic, PartitionState State, string Change);

/// <summary>
/// The metadata log decoded and replayed the way a silo's image applies it, keeping every entity's history so the
/// checker can find what an acknowledgement claims.
/// </summary>
public sealed class MetadataLog
{
    /// <summary>The service writes payloads with System.Text.Json's web defaults (camelCase).</summary>
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private MetadataLog()
    {
    }

    public required IReadOnlyList<LogEntry> Entries { get; init; }

    /// <summary>The head the metadata_log_head table gave (the last offset handed out).</summary>
    public required long Head { get; init; }

    public List<(long Offset, BrokerRecord Record)> BrokerRecords { get; } = [];

    public List<(long Offset, TopicRecord Record)> TopicRecords { get; } = [];

    /// <summary>Every partition state the log ever set, in offset order.</summary>
    public List<PartitionVersion> PartitionVersions { get; } = [];

    /// <summary>Every consumer group record, in offset order: a group's header (<c>Group</c>) or one member (<c>Member</c>).</summary>
    public List<(long Offset, GroupRecord? Group, GroupMemberRecord? Member)> GroupChanges { get; } = [];

    /// <summary>Records that could not be decoded: a violation of their own.</summary>
    public List<string> Undecodable { get; } = [];

    /// <summary>The state at the end of the log: brokers (epoch filled in), topics by name with their partitions.</summary>
    public Dictionary<int, BrokerRecord> Brokers { get; } = [];

    public Dictionary<string, (TopicRecord Topic, List<PartitionState> Partitions)> Topics { get; } = new(StringComparer.Ordinal);

    public static MetadataLog Replay(IEnumerable<LogEntry> entries, long head)
    {
        var log = new MetadataLog { Entries = [.. entries.OrderBy(e => e.Offset)], Head = head };
        var names = new Dictionary<Guid, string>();
        foreach (var entry in log.Entries)
        {
            try
            {
                log.Apply(entry, names);
            }
            catch (JsonException e)
            {
                log.Undecodable.Add($"offset {entry.Offset} ({entry.Type} {entry.Key}): {e.Message}");
            }
        }

        return log;
    }

    private void Apply(LogEntry entry, Dictionary<Guid, string> names)
    {
        switch (entry.Type)
        {
            case RecordTypes.Broker:
                var broker = JsonSerializer.Deserialize<BrokerRecord>(entry.Payload, Json)!;
                if (broker.Change == BrokerChanges.Registered)
                {
                    // A registration record cannot hold its own offset; the image fills it in, so the checker does too.
                    broker = broker with { BrokerEpoch = entry.Offset, RegistrationOffset = entry.Offset };
                }

                BrokerRecords.Add((entry.Offset, broker));
                if (broker.Change == BrokerChanges.Unregistered)
                {
                    Brokers.Remove(broker.BrokerId);
                }
                else
                {
                    Brokers[broker.BrokerId] = broker;
                }

                break;

            case RecordTypes.Topic:
                var topic = JsonSerializer.Deserialize<TopicRecord>(entry.Payload, Json)!;
                TopicRecords.Add((entry.Offset, topic));
                ApplyTopic(entry.Offset, topic, names);
                break;

            case RecordTypes.Group:
                GroupChanges.Add((entry.Offset, JsonSerializer.Deserialize<GroupRecord>(entry.Payload, Json)!, null));
                break;

            case RecordTypes.GroupMember:
                GroupChanges.Add((entry.Offset, null, JsonSerializer.Deserialize<GroupMemberRecord>(entry.Payload, Json)!));
                break;

            case RecordTypes.Partition:
                var partition = JsonSerializer.Deserialize<PartitionRecord>(entry.Payload, Json)!;
                PartitionVersions.Add(new PartitionVersion(entry.Offset, partition.TopicId, partition.Topic, partition.State, partition.Change));
                if (names.TryGetValue(partition.TopicId, out var name) && partition.State.Partition < Topics[name].Partitions.Count)
                {
                    Topics[name].Partitions[partition.State.Partition] = partition.State;
                }

                break;
        }
    }

    private void ApplyTopic(long offset, TopicRecord topic, Dictionary<Guid, string> names)
    {
        var current = Topics.GetValueOrDefault(topic.Name);
        var same = current.Topic is not null && current.Topic.TopicId == topic.TopicId;
        if (topic.Deleted)
        {
            if (same)
            {
                Topics.Remove(topic.Name);
                names.Remove(topic.TopicId);
            }

            return;
        }

        // Existing partitions keep their state; only partitions this record adds start from its initial state.
        var partitions = same ? current.Partitions : [];
        if (!same && current.Topic is not null)
        {
            names.Remove(current.Topic.TopicId);
        }

        foreach (var initial in topic.InitialPartitions.Skip(partitions.Count))
        {
            partitions.Add(initial);
            PartitionVersions.Add(new PartitionVersion(offset, topic.TopicId, topic.Name, initial, topic.Change));
        }

        Topics[topic.Name] = (topic, partitions);
        names[topic.TopicId] = topic.Name;
    }
}
