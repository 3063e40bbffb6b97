using FsCheck.Fluent;
using OrleansMeta.Grains.Groups;
using static OrleansMeta.Groups.Tests.AssignmentChecks;

namespace OrleansMeta.Groups.Tests;

public sealed class UniformAssignorTests
{
    private static readonly UniformAssignor Assignor = new();
    private static readonly IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Nothing =
        new Dictionary<string, IReadOnlySet<TopicPartition>>();

    [Fact]
    public void Three_members_and_twelve_partitions_get_four_each()
    {
        var topics = Scenario.MakeTopics(12);
        var subscription = topics.Keys.ToHashSet();
        var members = new[] { "c", "a", "b" }.Select(id => new AssignorMember(id, null, null, subscription)).ToList();

        var result = Assignor.Assign(members, topics, Nothing);

        AssertValid(members, topics, result);
        Assert.All(result.Values, set => Assert.Equal(4, set.Count));
    }

    [Fact]
    public void Every_subscribed_partition_goes_to_exactly_one_subscriber() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
            AssertValid(s.Members, s.Topics, Assignor.Assign(s.Members, s.Topics, s.Current)));

    [Fact]
    public void With_identical_subscriptions_counts_differ_by_at_most_one() =>
        Properties.Hold(Scenario.Generate(homogeneous: true), s =>
        {
            var result = Assignor.Assign(s.Members, s.Topics, s.Current);
            Assert.True(Spread(result) <= 1, $"spread {Spread(result)}");
        });

    [Fact]
    public void With_differing_subscriptions_no_single_move_improves_balance() =>
        Properties.Hold(Scenario.Generate(homogeneous: false), s =>
            AssertNoImprovingMove(s.Members, Assignor.Assign(s.Members, s.Topics, s.Current)));

    [Fact]
    public void The_result_does_not_depend_on_member_order() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
        {
            var reversed = s.Members.Reverse().ToList();
            var current = s.Current.Reverse().ToDictionary(kv => kv.Key, kv => (IReadOnlySet<TopicPartition>)kv.Value.Reverse().ToHashSet());
            Assert.True(SameAssignment(Assignor.Assign(s.Members, s.Topics, s.Current), Assignor.Assign(reversed, s.Topics, current)));
        });

    [Fact]
    public void Assigning_again_from_its_own_result_moves_nothing() =>
        Properties.Hold(Gen.Elements(true, false).SelectMany(h => Scenario.Generate(h)), s =>
        {
            var first = Assignor.Assign(s.Members, s.Topics, s.Current);
            Assert.True(SameAssignment(first, Assignor.Assign(s.Members, s.Topics, first)));
        });

    [Fact]
    public void A_member_joining_a_balanced_group_only_takes_partitions_from_others() =>
        Properties.Hold(Scenario.Generate(homogeneous: true), s =>
        {
            var before = Assignor.Assign(s.Members, s.Topics, s.Current);
            var joined = s.Members.Append(new AssignorMember("joiner", null, null, s.Members[0].SubscribedTopicIds)).ToList();

            var after = Assignor.Assign(joined, s.Topics, before);

            AssertValid(joined, s.Topics, after);
            Assert.True(Spread(after) <= 1);
            foreach (var member in s.Members)
            {
                Assert.True(after[member.MemberId].IsSubsetOf(before[member.MemberId]), $"{member.MemberId} received a partition");
            }

            // The joiner ends with floor or ceil of P/(N+1), all of it moved; nothing else moves.
            var partitions = before.Values.Sum(v => v.Count);
            var bound = (partitions + joined.Count - 1) / joined.Count;
            Assert.True(Moved(before, after) == after["joiner"].Count, "a partition moved between old members");
            Assert.True(after["joiner"].Count <= bound, $"moved {after["joiner"].Count} > ceil({partitions}/{joined.Count})");
        });

    [Fact]
    public void A_member_leaving_a_balanced_group_only_gives_its_partitions_to_others() =>
        Properties.Hold(Scenario.Generate(homogeneous: true), s =>
        {
            var before = Assignor.Assign(s.Members, s.Topics, s.Current);
            var left = s.Members.Skip(1).ToList();

            var after = Assignor.Assign(left, s.Topics, before);

            AssertValid(left, s.Topics, after);
            Assert.All(left, m => Assert.True(before[m.MemberId].IsSubsetOf(after[m.MemberId]), $"{m.MemberId} lost a partition"));
        });

    [Fact]
    public void A_topic_that_no_longer_exists_and_unknown_partitions_are_dropped()
    {
        var topics = Scenario.MakeTopics(2);
        var gone = Scenario.TopicId(7);
        var members = new[] { new AssignorMember("a", null, null, new HashSet<Guid> { Scenario.TopicId(0), gone }) };
        var current = new Dictionary<string, IReadOnlySet<TopicPartition>>
        {
            ["a"] = new HashSet<TopicPartition> { new(gone, 0), new(Scenario.TopicId(0), 5), new(Scenario.TopicId(0), 1) },
        };

        var result = Assignor.Assign(members, topics, current);

        Assert.Equal(Scenario.Partitions(Scenario.TopicId(0), 0, 1), result["a"]);
    }

    [Fact]
    public void Differing_subscriptions_fill_the_members_that_can_take_more()
    {
        // a and b share t0 (6 partitions); c only has t1 (2): a and b split t0, c takes t1.
        var topics = Scenario.MakeTopics(6, 2);
        var t0 = Scenario.TopicId(0);
        var t1 = Scenario.TopicId(1);
        var members = new[]
        {
            new AssignorMember("a", null, null, new HashSet<Guid> { t0, t1 }),
            new AssignorMember("b", null, null, new HashSet<Guid> { t0 }),
            new AssignorMember("c", null, null, new HashSet<Guid> { t1 }),
        };

        var result = Assignor.Assign(members, topics, Nothing);

        AssertValid(members, topics, result);
        Assert.Equal([3, 3, 2], members.Select(m => result[m.MemberId].Count));
    }
}
