using FsCheck;
using FsCheck.Fluent;
using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

/// <summary>An assignor's input: topics, members with subscriptions, and a previous target that may be stale (members
/// that left, partitions of topics no longer subscribed to or that do not exist, partitions claimed twice).</summary>
internal sealed record Scenario(
    IReadOnlyDictionary<Guid, AssignorTopic> Topics,
    IReadOnlyList<AssignorMember> Members,
    IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Current,
    bool Homogeneous,
    int Seed)
{
    public static Guid TopicId(int i) => new(i + 1, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]);

    public static IReadOnlySet<TopicPartition> Partitions(Guid topicId, params int[] partitions) =>
        partitions.Select(p => new TopicPartition(topicId, p)).ToHashSet();

    public static Dictionary<Guid, AssignorTopic> MakeTopics(params int[] partitionCounts) =>
        partitionCounts.Select((count, i) => new AssignorTopic(TopicId(i), $"t{i}", count)).ToDictionary(t => t.TopicId);

    /// <summary>Groups of 1..12 members over 1..5 topics of 0..30 partitions.</summary>
    public static Gen<Scenario> Generate(bool homogeneous, int maxMembers = 12) =>
        from partitionCounts in Gen.Choose(1, 5).SelectMany(n => Gen.ArrayOf(Gen.Choose(0, 30), n))
        from memberCount in Gen.Choose(1, maxMembers)
        from seed in Gen.Choose(0, 1_000_000)
        select Build(partitionCounts, memberCount, homogeneous, seed);

    public static Scenario Build(int[] partitionCounts, int memberCount, bool homogeneous, int seed)
    {
        var random = new Random(seed);
        var topics = MakeTopics(partitionCounts);
        var topicIds = topics.Keys.ToArray();
        HashSet<Guid> RandomSubscription() =>
            topicIds.Where(_ => random.Next(3) > 0).DefaultIfEmpty(topicIds[random.Next(topicIds.Length)]).ToHashSet();

        var shared = RandomSubscription();
        // Ids in no particular order, so that sorting matters; instance ids on some members, as static members have.
        var members = Enumerable.Range(0, memberCount)
            .Select(i => new AssignorMember(
                $"member-{random.Next(1000):D3}-{i}",
                random.Next(3) == 0 ? $"instance-{random.Next(100)}-{i}" : null,
                null,
                homogeneous ? shared : RandomSubscription()))
            .ToList();

        var current = new Dictionary<string, HashSet<TopicPartition>>();
        var claimants = members.Select(m => m.MemberId).Append("member-that-left").ToArray();
        foreach (var topic in topics.Values)
        {
            // One partition past the end as well: a stale target may name partitions that no longer exist.
            for (var p = 0; p <= topic.PartitionCount; p++)
            {
                for (var claims = random.Next(3) == 0 ? 2 : random.Next(2); claims > 0; claims--)
                {
                    var owner = claimants[random.Next(claimants.Length)];
                    if (!current.TryGetValue(owner, out var set))
                    {
                        current[owner] = set = [];
                    }

                    set.Add(new TopicPartition(topic.TopicId, p));
                }
            }
        }

        return new Scenario(
            topics,
            members,
            current.ToDictionary(kv => kv.Key, kv => (IReadOnlySet<TopicPartition>)kv.Value),
            homogeneous,
            seed);
    }

    public override string ToString() =>
        $"seed {Seed}, {(Homogeneous ? "homogeneous" : "heterogeneous")}, topics [{string.Join(", ", Topics.Values.Select(t => $"{t.Name}:{t.PartitionCount}"))}], "
        + $"members [{string.Join(", ", Members.Select(m => $"{m.MemberId}->{string.Join("+", m.SubscribedTopicIds.Select(id => Topics[id].Name).Order())}"))}]";
}

internal static class Properties
{
    /// <summary>Checks <paramref name="property"/> on <paramref name="tests"/> generated values; a failure names the
    /// value (its ToString) and the assertion that failed.</summary>
    public static void Hold<T>(Gen<T> gen, Action<T> property, int tests = 200)
    {
        string? failure = null;
        var prop = Prop.ForAll(gen.ToArbitrary(), (T value) =>
        {
            try
            {
                property(value);
                return true;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failure ??= $"{value}:{Environment.NewLine}{e.Message}";
                return false;
            }
        });
        var error = Record.Exception(() => Check.One(Config.QuickThrowOnFailure.WithMaxTest(tests).WithQuietOnSuccess(true), prop));
        Assert.True(error is null, $"{failure}{Environment.NewLine}{error?.Message}");
    }
}
