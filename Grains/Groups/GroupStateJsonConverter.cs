using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// The stored form of a <see cref="GroupState"/>, written whole by every group write, so its size is paid once per
/// member step of every rebalance. Partition lists are packed by topic (<c>{"&lt;topicId&gt;": [0, 1, 2]}</c>: a topic id
/// once per list, not once per partition); members are an array, each naming its id once; nulls, empty revocations and
/// the stable state are left out; a target equal to the member's assignment (a stable member's) is left out too.
/// </summary>
/// <remarks>
/// Reads both this form and the one written before it (reflection's: members as an object keyed by member id, each
/// partition an object <c>{"topicId": "…", "partition": n}</c>, every property present), telling them apart by each
/// value's shape, so states stored by an older version load unchanged. Property names are those the older form used;
/// they are matched ignoring case, as the web defaults the older form was read with did. Unknown properties are
/// skipped.
/// </remarks>
public sealed class GroupStateJsonConverter : JsonConverter<GroupState>
{
    public override GroupState Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        Expect(ref reader, JsonTokenType.StartObject, "a group state");
        var state = new GroupState();
        while (NextProperty(ref reader) is { } name)
        {
            switch (name)
            {
                case "groupepoch":
                    state.GroupEpoch = reader.GetInt32();
                    break;
                case "assignmentepoch":
                    state.AssignmentEpoch = reader.GetInt32();
                    break;
                case "assignor":
                    state.Assignor = reader.GetString() ?? state.Assignor;
                    break;
                case "subscribedtopics":
                    state.SubscribedTopics = ReadTopicCounts(ref reader);
                    break;
                case "members":
                    state.Members = ReadMembers(ref reader);
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        return state;
    }

    public override void Write(Utf8JsonWriter writer, GroupState value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteNumber("groupEpoch", value.GroupEpoch);
        writer.WriteNumber("assignmentEpoch", value.AssignmentEpoch);
        writer.WriteString("assignor", value.Assignor);
        writer.WriteStartObject("subscribedTopics");
        foreach (var (topicId, partitions) in value.SubscribedTopics)
        {
            writer.WriteNumber(TopicKey(topicId), partitions);
        }

        writer.WriteEndObject();
        writer.WriteStartArray("members");
        foreach (var member in value.Members.Values)
        {
            WriteMember(writer, member);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteMember(Utf8JsonWriter writer, GroupMember member)
    {
        writer.WriteStartObject();
        writer.WriteString("memberId", member.MemberId);
        WriteIfSet(writer, "instanceId", member.InstanceId);
        WriteIfSet(writer, "rackId", member.RackId);
        WriteIfSet(writer, "clientId", member.ClientId);
        writer.WriteStartArray("subscribedTopicNames");
        foreach (var name in member.SubscribedTopicNames)
        {
            writer.WriteStringValue(name);
        }

        writer.WriteEndArray();
        WriteIfSet(writer, "subscribedTopicRegex", member.SubscribedTopicRegex);
        WriteIfSet(writer, "serverAssignor", member.ServerAssignor);
        writer.WriteNumber("memberEpoch", member.MemberEpoch);
        writer.WriteNumber("previousMemberEpoch", member.PreviousMemberEpoch);
        if (member.State != MemberState.Stable)
        {
            writer.WriteNumber("state", (int)member.State);
        }

        writer.WritePropertyName("assigned");
        WritePartitions(writer, member.Assigned);
        if (member.PendingRevocation.Count > 0)
        {
            writer.WritePropertyName("pendingRevocation");
            WritePartitions(writer, member.PendingRevocation);
        }

        if (!member.Target.SequenceEqual(member.Assigned))
        {
            writer.WritePropertyName("target");
            WritePartitions(writer, member.Target);
        }

        if (member.LeftWithEpoch is { } leftWithEpoch)
        {
            writer.WriteNumber("leftWithEpoch", leftWithEpoch);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// <c>{"&lt;topicId&gt;": [partitions]}</c>, topics in the order they first appear and each topic's partitions in list
    /// order, so a list grouped by topic (as the grain keeps them: sorted) reads back exactly as it was.
    /// </summary>
    private static void WritePartitions(Utf8JsonWriter writer, List<TopicPartition> partitions)
    {
        writer.WriteStartObject();
        for (var i = 0; i < partitions.Count; i++)
        {
            var topicId = partitions[i].TopicId;
            if (!FirstOfTopic(partitions, i))
            {
                continue;
            }

            writer.WriteStartArray(TopicKey(topicId));
            for (var j = i; j < partitions.Count; j++)
            {
                if (partitions[j].TopicId == topicId)
                {
                    writer.WriteNumberValue(partitions[j].Partition);
                }
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    /// <summary>Whether entry <paramref name="index"/> is its topic's first; cheap for the usual sorted list, where only
    /// the previous entry needs looking at.</summary>
    private static bool FirstOfTopic(List<TopicPartition> partitions, int index)
    {
        var topicId = partitions[index].TopicId;
        if (index == 0 || partitions[index - 1].TopicId == topicId)
        {
            return index == 0;
        }

        for (var k = 0; k < index - 1; k++)
        {
            if (partitions[k].TopicId == topicId)
            {
                return false;
            }
        }

        return true;
    }

    private static void WriteIfSet(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }

    private static string TopicKey(Guid topicId) => topicId.ToString("D");

    /// <summary>Members: an array (this form) or an object keyed by member id (the older form, whose members also
    /// name their id).</summary>
    private static Dictionary<string, GroupMember> ReadMembers(ref Utf8JsonReader reader)
    {
        var members = new Dictionary<string, GroupMember>(StringComparer.Ordinal);
        if (reader.TokenType == JsonTokenType.StartArray)
        {
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var member = ReadMember(ref reader);
                members[member.MemberId] = member;
            }

            return members;
        }

        Expect(ref reader, JsonTokenType.StartObject, "members");
        while (NextProperty(ref reader, lowerCase: false) is { } key)
        {
            var member = ReadMember(ref reader);
            if (member.MemberId.Length == 0)
            {
                member.MemberId = key;
            }

            members[key] = member;
        }

        return members;
    }

    private static GroupMember ReadMember(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "a member");
        var member = new GroupMember();
        var hasTarget = false;
        while (NextProperty(ref reader) is { } name)
        {
            switch (name)
            {
                case "memberid":
                    member.MemberId = reader.GetString() ?? "";
                    break;
                case "instanceid":
                    member.InstanceId = reader.GetString();
                    break;
                case "rackid":
                    member.RackId = reader.GetString();
                    break;
                case "clientid":
                    member.ClientId = reader.GetString();
                    break;
                case "subscribedtopicnames":
                    member.SubscribedTopicNames = ReadStrings(ref reader);
                    break;
                case "subscribedtopicregex":
                    member.SubscribedTopicRegex = reader.GetString();
                    break;
                case "serverassignor":
                    member.ServerAssignor = reader.GetString();
                    break;
                case "memberepoch":
                    member.MemberEpoch = reader.GetInt32();
                    break;
                case "previousmemberepoch":
                    member.PreviousMemberEpoch = reader.GetInt32();
                    break;
                case "state":
                    member.State = (MemberState)reader.GetInt32();
                    break;
                case "assigned":
                    member.Assigned = ReadPartitions(ref reader);
                    break;
                case "pendingrevocation":
                    member.PendingRevocation = ReadPartitions(ref reader);
                    break;
                case "target":
                    member.Target = ReadPartitions(ref reader);
                    hasTarget = true;
                    break;
                case "leftwithepoch":
                    member.LeftWithEpoch = reader.TokenType == JsonTokenType.Null ? null : reader.GetInt32();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (!hasTarget)
        {
            member.Target = [.. member.Assigned];
        }

        return member;
    }

    /// <summary>A partition list: packed by topic (this form) or an array of <c>{"topicId", "partition"}</c> objects (the
    /// older form).</summary>
    private static List<TopicPartition> ReadPartitions(ref Utf8JsonReader reader)
    {
        var partitions = new List<TopicPartition>();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return partitions;
        }

        if (reader.TokenType == JsonTokenType.StartArray)
        {
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                partitions.Add(ReadUnpackedPartition(ref reader));
            }

            return partitions;
        }

        Expect(ref reader, JsonTokenType.StartObject, "a partition list");
        while (NextProperty(ref reader, lowerCase: false) is { } key)
        {
            var topicId = ParseTopicId(key);
            Expect(ref reader, JsonTokenType.StartArray, $"the partitions of topic {key}");
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                partitions.Add(new TopicPartition(topicId, reader.GetInt32()));
            }
        }

        return partitions;
    }

    private static TopicPartition ReadUnpackedPartition(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "a partition");
        var topicId = Guid.Empty;
        var partition = 0;
        while (NextProperty(ref reader) is { } name)
        {
            switch (name)
            {
                case "topicid":
                    topicId = reader.GetGuid();
                    break;
                case "partition":
                    partition = reader.GetInt32();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        return new TopicPartition(topicId, partition);
    }

    private static Dictionary<Guid, int> ReadTopicCounts(ref Utf8JsonReader reader)
    {
        var topics = new Dictionary<Guid, int>();
        Expect(ref reader, JsonTokenType.StartObject, "subscribedTopics");
        while (NextProperty(ref reader, lowerCase: false) is { } key)
        {
            topics[ParseTopicId(key)] = reader.GetInt32();
        }

        return topics;
    }

    private static List<string> ReadStrings(ref Utf8JsonReader reader)
    {
        var values = new List<string>();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return values;
        }

        Expect(ref reader, JsonTokenType.StartArray, "a list of names");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            values.Add(reader.GetString() ?? "");
        }

        return values;
    }

    private static Guid ParseTopicId(string key) => Guid.TryParse(key, out var topicId)
        ? topicId
        : throw new JsonException($"A stored group state names topic '{key}', which is not a topic id.");

    /// <summary>Moves to the next property of the current object and onto its value; returns its name (lower-cased for
    /// matching, unless <paramref name="lowerCase"/> is false, as for keys that are ids), or null at the object's end.</summary>
    private static string? NextProperty(ref Utf8JsonReader reader, bool lowerCase = true)
    {
        if (!reader.Read() || reader.TokenType == JsonTokenType.EndObject)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.PropertyName)
        {
            throw new JsonException($"A stored group state has {reader.TokenType} where a property name belongs.");
        }

        var name = reader.GetString()!;
        reader.Read();
        return lowerCase ? name.ToLowerInvariant() : name;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType expected, string what)
    {
        if (reader.TokenType != expected)
        {
            throw new JsonException($"A stored group state has {reader.TokenType} where {what} ({expected}) belongs.");
        }
    }
}
