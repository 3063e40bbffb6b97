using FsCheck.Fluent;
using OrleansMeta.Grains.Groups;
using static OrleansMeta.Groups.Tests.AssignmentChecks;

namespace OrleansMeta.Groups.Tests;

public sealed class RangeAssignorTests
{
    private static readonly RangeAssignor Assignor = new();
    private static readonly IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Nothing =
        new Dictionary<string, IReadOnlySet<TopicPartition>>();

    [Fact]
    public void Three_members_over_two_topics_of_seven_and_three_partitions_get_contiguous_co_partitioned_ranges()
    {
        var topics = Scenario.MakeTopics(7, 3);
        var t0 = Scenario.TopicId(0);
        var t1 = Scenario.TopicId(1);
        var both = new HashSet<Guid> { t0, t1 };
        // Static members (instance ids) come first, by instance id; then the others by member id.
        var members = new[]
        {
            new AssignorMember("m-a", null, null, both),
            new AssignorMember("m-z", "instance-2", null, both),
            new AssignorMember("m-b", "instance-1", null, both),
        };

        var result = Assignor.Assign(members, topics, Nothing);

        Assert.Equal(Scenario.Partitions(t0, 0, 1, 2).Concat(Scenario.Partitions(t1, 0)).ToHashSet(), result["m-b"]);
        Assert.Equal(Scenario.Partitions(t0, 3, 4).Concat(Scenario.Partitions(t1, 1)).ToHashSet(), result["m-z"]);
        Assert.Equal(Scenario.Partitions(t0, 5, 6).Concat(Scenario.Partitions(t1, 2)).ToHashSet(), result["m-a"]);
    }

    [Fact]
    public void Only_subscribers_of_a_topic_share_its_ranges()
    {
        var topics = Scenario.MakeTopics(4, 4);
        var t0 = Scenario.TopicId(0);
        var t1 = Scenario.TopicId(1);
        var members = new[]
        {
            new AssignorMember("a", null, null, new HashSet<Guid> { t0, t1 }),
            new AssignorMember("b", null, null, new HashSet<Guid> { t1 }),
        };

        var result = Assignor.Assign(members, topics, Nothing);

        Assert.Equal(Scenario.Partitions(t0, 0, 1, 2, 3).Concat(Scenario.Partitions(t1, 0, 1)).ToHashSet(), result["a"]);
        Assert.Equal(Scenario.Partitions(t1, 2, 3), result["b"]);
    }

    [Fact]
    public void Every_subscribed_partition_goes_to_exactly_one_subscriber() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
            AssertValid(s.Members, s.Topics, Assignor.Assign(s.Members, s.Topics, s.Current)));

    [Fact]
    public void Each_subscriber_gets_one_contiguous_range_within_one_of_the_others() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
        {
            var result = Assignor.Assign(s.Members, s.Topics, s.Current);
            foreach (var topic in s.Topics.Values)
            {
                var ranges = s.Members.Where(m => m.SubscribedTopicIds.Contains(topic.TopicId))
                    .Select(m => result[m.MemberId].Where(tp => tp.TopicId == topic.TopicId).Select(tp => tp.Partition).Order().ToList())
                    .ToList();
                if (ranges.Count == 0)
                {
                    continue;
                }

                Assert.True(ranges.Max(r => r.Count) - ranges.Min(r => r.Count) <= 1, $"{topic.Name} unevenly split");
                Assert.All(ranges.Where(r => r.Count > 0), r => Assert.Equal(r[^1] - r[0] + 1, r.Count));
            }
        });

    [Fact]
    public void Topics_with_the_same_subscribers_and_partition_count_are_co_partitioned() =>
        Properties.Hold(Scenario.Generate(homogeneous: true), s =>
        {
            var result = Assignor.Assign(s.Members, s.Topics, s.Current);
            var owner = result.SelectMany(kv => kv.Value.Select(tp => (tp, kv.Key))).ToDictionary(x => x.tp, x => x.Key);
            foreach (var group in s.Topics.Values.Where(t => s.Members[0].SubscribedTopicIds.Contains(t.TopicId)).GroupBy(t => t.PartitionCount))
            {
                for (var p = 0; p < group.Key; p++)
                {
                    Assert.Single(group.Select(t => owner[new TopicPartition(t.TopicId, p)]).Distinct());
                }
            }
        });

    [Fact]
    public void The_result_does_not_depend_on_member_order() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
            Assert.True(SameAssignment(
                Assignor.Assign(s.Members, s.Topics, s.Current),
                Assignor.Assign(s.Members.Reverse().ToList(), s.Topics, Nothing))));
}
