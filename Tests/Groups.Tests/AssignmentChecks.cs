using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

/// <summary>What every target assignment must satisfy, and the measures the properties compare.</summary>
internal static class AssignmentChecks
{
    /// <summary>Every member has an entry; every partition of a subscribed topic goes to exactly one of its
    /// subscribers; nothing else is assigned.</summary>
    public static void AssertValid(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> result)
    {
        Assert.Equal(members.Select(m => m.MemberId).Order(), result.Keys.Order());
        var owners = new Dictionary<TopicPartition, string>();
        foreach (var member in members)
        {
            foreach (var tp in result[member.MemberId])
            {
                Assert.True(member.SubscribedTopicIds.Contains(tp.TopicId), $"{member.MemberId} got {tp} of a topic it does not subscribe to");
                Assert.True(topics.TryGetValue(tp.TopicId, out var topic) && tp.Partition >= 0 && tp.Partition < topic.PartitionCount, $"{tp} does not exist");
                Assert.True(owners.TryAdd(tp, member.MemberId), $"{tp} goes to {owners.GetValueOrDefault(tp)} and {member.MemberId}");
            }
        }

        var subscribed = members.SelectMany(m => m.SubscribedTopicIds).Where(topics.ContainsKey).ToHashSet();
        var expected = subscribed.Sum(id => topics[id].PartitionCount);
        Assert.True(owners.Count == expected, $"{expected - owners.Count} subscribed partitions unassigned");
    }

    public static int Spread(IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> result) =>
        result.Count == 0 ? 0 : result.Values.Max(s => s.Count) - result.Values.Min(s => s.Count);

    /// <summary>No single partition can move to another subscriber of its topic and make counts more even.</summary>
    public static void AssertNoImprovingMove(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> result)
    {
        foreach (var owner in members)
        {
            var ownerCount = result[owner.MemberId].Count;
            foreach (var topicId in result[owner.MemberId].Select(tp => tp.TopicId).Distinct())
            {
                foreach (var other in members.Where(m => m.SubscribedTopicIds.Contains(topicId)))
                {
                    Assert.True(ownerCount <= result[other.MemberId].Count + 1,
                        $"{owner.MemberId} has {ownerCount} partitions including some of topic {topicId}, which {other.MemberId} "
                        + $"subscribes to with only {result[other.MemberId].Count}");
                }
            }
        }
    }

    public static bool SameAssignment(
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> a,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && kv.Value.SetEquals(other));

    /// <summary>How many partitions have an owner in <paramref name="after"/> other than the one in
    /// <paramref name="before"/> (partitions new in <paramref name="after"/> do not count).</summary>
    public static int Moved(
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> before,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> after)
    {
        var previousOwner = before.SelectMany(kv => kv.Value.Select(tp => (tp, kv.Key))).ToDictionary(x => x.tp, x => x.Key);
        return after.Sum(kv => kv.Value.Count(tp => previousOwner.TryGetValue(tp, out var was) && was != kv.Key));
    }
}
