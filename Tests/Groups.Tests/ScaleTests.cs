using System.Diagnostics;
using OrleansMeta.Grains.Groups;
using Xunit.Abstractions;
using static OrleansMeta.Groups.Tests.AssignmentChecks;

namespace OrleansMeta.Groups.Tests;

/// <summary>A large group is assigned correctly. Speed is for benchmarks; these only check the result.</summary>
public sealed class ScaleTests(ITestOutputHelper output)
{
    private const int Members = 1000;
    private static readonly Dictionary<Guid, AssignorTopic> Topics = Scenario.MakeTopics(Enumerable.Repeat(10_000, 10).ToArray());

    // Timed for the record only (the machine is shared): a test never fails on time.
    private IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Timed(
        string what, Func<IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>>> assign)
    {
        var watch = Stopwatch.StartNew();
        var result = assign();
        output.WriteLine($"{what}: {watch.ElapsedMilliseconds} ms");
        return result;
    }

    private static List<AssignorMember> Group(int count, Func<int, IReadOnlySet<Guid>> subscription) =>
        Enumerable.Range(0, count).Select(i => new AssignorMember($"member-{i:D4}", null, null, subscription(i))).ToList();

    [Fact]
    public void A_thousand_members_share_a_hundred_thousand_partitions_evenly_and_a_joiner_takes_only_its_share()
    {
        var all = Topics.Keys.ToHashSet();
        var members = Group(Members, _ => all);
        var assignor = new UniformAssignor();

        var first = Timed("uniform, identical, from nothing", () => assignor.Assign(members, Topics, new Dictionary<string, IReadOnlySet<TopicPartition>>()));
        AssertValid(members, Topics, first);
        Assert.All(first.Values, set => Assert.Equal(100, set.Count));

        var joined = members.Append(new AssignorMember("member-new", null, null, all)).ToList();
        var second = Timed("uniform, identical, one joins", () => assignor.Assign(joined, Topics, first));
        AssertValid(joined, Topics, second);
        Assert.True(Spread(second) <= 1);
        Assert.Equal(second["member-new"].Count, Moved(first, second));
    }

    [Fact]
    public void A_thousand_members_with_differing_subscriptions_get_a_valid_balanced_assignment()
    {
        var topicIds = Topics.Keys.Order().ToArray();
        // Member i subscribes to three consecutive topics, so every topic has about 300 subscribers.
        var members = Group(Members, i => Enumerable.Range(i, 3).Select(t => topicIds[t % topicIds.Length]).ToHashSet());

        var result = Timed("uniform, differing, from nothing", () => new UniformAssignor().Assign(members, Topics, new Dictionary<string, IReadOnlySet<TopicPartition>>()));

        AssertValid(members, Topics, result);
        Assert.True(Spread(result) <= 1, $"spread {Spread(result)}");
    }

    [Fact]
    public void A_thousand_members_with_differing_subscriptions_rebalance_when_they_join_one_that_held_everything()
    {
        var topicIds = Topics.Keys.Order().ToArray();
        var members = Group(Members, i => Enumerable.Range(i, 3).Select(t => topicIds[t % topicIds.Length]).ToHashSet());
        var everything = Topics.Values.SelectMany(t => Enumerable.Range(0, t.PartitionCount).Select(p => new TopicPartition(t.TopicId, p))).ToHashSet();
        var current = new Dictionary<string, IReadOnlySet<TopicPartition>> { [members[0].MemberId] = everything };

        var result = Timed("uniform, differing, one held everything", () => new UniformAssignor().Assign(members, Topics, current));

        AssertValid(members, Topics, result);
        Assert.True(Spread(result) <= 1, $"spread {Spread(result)}");
    }

    [Fact]
    public void A_thousand_members_get_valid_ranges_of_a_hundred_thousand_partitions()
    {
        var all = Topics.Keys.ToHashSet();
        var members = Group(Members, _ => all);

        var result = Timed("range", () => new RangeAssignor().Assign(members, Topics, new Dictionary<string, IReadOnlySet<TopicPartition>>()));

        AssertValid(members, Topics, result);
        Assert.All(result.Values, set => Assert.Equal(100, set.Count));
    }
}
