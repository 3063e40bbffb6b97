namespace OrleansMeta.Grains.Groups;

/// <summary>
/// The assignors' shared view of their input: members in a fixed order and the topics somebody subscribes to, each with
/// its subscribers. Everything here is ordered (ordinal member ids, topic ids), never hash-ordered, so that every silo
/// computes the same target from the same input.
/// </summary>
internal sealed class AssignorInput
{
    private AssignorInput(AssignorMember[] members, Guid[] topicIds, Dictionary<Guid, int[]> subscribers, int[] partitionCounts)
    {
        Members = members;
        TopicIds = topicIds;
        Subscribers = subscribers;
        PartitionCounts = partitionCounts;
    }

    /// <summary>The members in the order given by the comparer <see cref="Create"/> was called with.</summary>
    public AssignorMember[] Members { get; }

    /// <summary>Subscribed topics that exist and have partitions, ascending by id.</summary>
    public Guid[] TopicIds { get; }

    /// <summary>Per topic id, the indexes (into <see cref="Members"/>) of its subscribers, ascending.</summary>
    public Dictionary<Guid, int[]> Subscribers { get; }

    /// <summary>Partition count of <see cref="TopicIds"/>[i].</summary>
    public int[] PartitionCounts { get; }

    /// <summary>
    /// Orders members and collects subscribers. A subscription to a topic missing from <paramref name="topics"/> is
    /// ignored rather than fatal: the topic may have been deleted between resolving subscriptions and assigning, and
    /// the next assignment will not see it either.
    /// </summary>
    public static AssignorInput Create(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        Comparison<AssignorMember> order)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(topics);
        var sorted = members.ToArray();
        Array.Sort(sorted, order);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in sorted)
        {
            if (!seen.Add(member.MemberId))
            {
                throw new ArgumentException($"Member '{member.MemberId}' appears twice in the assignor's input.", nameof(members));
            }
        }

        var subscribers = new Dictionary<Guid, List<int>>();
        for (var m = 0; m < sorted.Length; m++)
        {
            foreach (var topicId in sorted[m].SubscribedTopicIds)
            {
                if (!topics.TryGetValue(topicId, out var topic) || topic.PartitionCount <= 0)
                {
                    continue;
                }

                if (!subscribers.TryGetValue(topicId, out var list))
                {
                    subscribers[topicId] = list = [];
                }

                list.Add(m);
            }
        }

        var topicIds = subscribers.Keys.ToArray();
        Array.Sort(topicIds);
        var counts = topicIds.Select(id => topics[id].PartitionCount).ToArray();
        // Members were added in index order, so each list is already ascending.
        var frozen = subscribers.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        return new AssignorInput(sorted, topicIds, frozen, counts);
    }

    /// <summary>Ordinal by member id: the order the uniform assignor breaks ties by.</summary>
    public static int ByMemberId(AssignorMember a, AssignorMember b) => string.CompareOrdinal(a.MemberId, b.MemberId);

    /// <summary>Builds the result: one set per member, members with nothing included with an empty set.</summary>
    public Dictionary<string, IReadOnlySet<TopicPartition>> EmptyResult(out HashSet<TopicPartition>[] perMember)
    {
        perMember = new HashSet<TopicPartition>[Members.Length];
        var result = new Dictionary<string, IReadOnlySet<TopicPartition>>(Members.Length, StringComparer.Ordinal);
        for (var m = 0; m < Members.Length; m++)
        {
            perMember[m] = [];
            result[Members[m].MemberId] = perMember[m];
        }

        return result;
    }
}
