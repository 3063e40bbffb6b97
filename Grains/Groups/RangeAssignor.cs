namespace OrleansMeta.Grains.Groups;

/// <summary>
/// KIP-848's range assignor: per topic, its subscribers in a fixed order each get one contiguous range of partitions,
/// the first <c>P mod S</c> of them one partition more. Because the order is the same for every topic, topics with the
/// same subscribers and partition count are co-partitioned: partition <c>i</c> of each goes to the same member, which
/// is what joins over keyed topics need. Not sticky: the ranges follow from the member list alone.
/// </summary>
/// <remarks>
/// Order (as Kafka's): members with an instance id first, by instance id, then the others by member id (both ordinal).
/// Static members keep their ranges across restarts that give them a new member id.
/// </remarks>
public sealed class RangeAssignor : IPartitionAssignor
{
    /// <summary>The name a group chooses this assignor by.</summary>
    public const string AssignorName = "range";

    /// <inheritdoc/>
    public string Name => AssignorName;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Assign(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> currentTarget)
    {
        var input = AssignorInput.Create(members, topics, StaticFirst);
        var result = input.EmptyResult(out var perMember);
        for (var t = 0; t < input.TopicIds.Length; t++)
        {
            var topicId = input.TopicIds[t];
            var subscribers = input.Subscribers[topicId];
            var partitions = input.PartitionCounts[t];
            var quota = partitions / subscribers.Length;
            var extra = partitions % subscribers.Length;
            var next = 0;
            for (var s = 0; s < subscribers.Length; s++)
            {
                var end = next + quota + (s < extra ? 1 : 0);
                var owned = perMember[subscribers[s]];
                for (var p = next; p < end; p++)
                {
                    owned.Add(new TopicPartition(topicId, p));
                }

                next = end;
            }
        }

        return result;
    }

    private static int StaticFirst(AssignorMember a, AssignorMember b)
    {
        if (a.InstanceId is not null && b.InstanceId is not null)
        {
            var byInstance = string.CompareOrdinal(a.InstanceId, b.InstanceId);
            return byInstance != 0 ? byInstance : string.CompareOrdinal(a.MemberId, b.MemberId);
        }

        if (a.InstanceId is not null)
        {
            return -1;
        }

        return b.InstanceId is not null ? 1 : string.CompareOrdinal(a.MemberId, b.MemberId);
    }
}
