namespace OrleansMeta.Grains.Groups;

/// <summary>
/// KIP-848's uniform assignor: spreads partitions so that member counts differ as little as subscriptions allow, and
/// keeps every member's previous target where balance does not need the partition elsewhere (balance first, then
/// stickiness, as Kafka's).
/// </summary>
/// <remarks>
/// <para>One algorithm serves identical and differing subscriptions, in three phases:</para>
/// <list type="number">
/// <item>Keep: every partition of the previous target stays with its member if the member still subscribes to the
/// topic and the partition still exists (a partition claimed twice goes to the first claimant in member-id order).</item>
/// <item>Fill: every partition nobody kept goes to the least loaded subscriber of its topic. Topics with the most
/// partitions per subscriber go first, because they leave the least room to even out later.</item>
/// <item>Balance: per topic, while its most loaded owner has two partitions more than its least loaded subscriber,
/// one partition moves between them; passes over all topics repeat until one moves nothing.</item>
/// </list>
/// <para>Every move in Balance lowers the sum of squared member counts, so it ends. When it ends, no single partition
/// can move to a subscriber of its topic and improve balance. With identical subscriptions that means every count is
/// within one of every other. With differing ones it is a local optimum: an imbalance that only a chain of moves over
/// several topics could fix may remain (Kafka's heterogeneous builder has the same limit). A member joining a balanced
/// group only receives: partitions move to it, never between old members.</para>
/// <para>Ties go to the lower member id, so the result does not depend on input order or hashing.</para>
/// </remarks>
public sealed class UniformAssignor : IPartitionAssignor
{
    /// <summary>The name a group chooses this assignor by.</summary>
    public const string AssignorName = "uniform";

    // A bound on Balance passes, so that a pathological subscription pattern cannot hold the group's turn. Ordinary
    // patterns settle in two or three passes; if it is reached the target is valid, only less balanced.
    private const int MaxBalancePasses = 64;

    /// <inheritdoc/>
    public string Name => AssignorName;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Assign(
        IReadOnlyList<AssignorMember> members,
        IReadOnlyDictionary<Guid, AssignorTopic> topics,
        IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> currentTarget)
    {
        ArgumentNullException.ThrowIfNull(currentTarget);
        var input = AssignorInput.Create(members, topics, AssignorInput.ByMemberId);
        var state = new State(input);
        state.Keep(currentTarget);
        var order = FillOrder(input);
        state.Fill(order);
        for (var pass = 0; pass < MaxBalancePasses; pass++)
        {
            if (state.BalancePass(order) == 0)
            {
                break;
            }
        }

        return state.Result();
    }

    // Most partitions per subscriber first, then fewer subscribers, then topic id (the order Kafka's builder uses).
    private static int[] FillOrder(AssignorInput input)
    {
        var order = Enumerable.Range(0, input.TopicIds.Length).ToArray();
        Array.Sort(order, (a, b) =>
        {
            long pa = input.PartitionCounts[a], sa = input.Subscribers[input.TopicIds[a]].Length;
            long pb = input.PartitionCounts[b], sb = input.Subscribers[input.TopicIds[b]].Length;
            var byDensity = (pb * sa).CompareTo(pa * sb);
            if (byDensity != 0)
            {
                return byDensity;
            }

            var bySubscribers = sa.CompareTo(sb);
            return bySubscribers != 0 ? bySubscribers : input.TopicIds[a].CompareTo(input.TopicIds[b]);
        });
        return order;
    }

    private sealed class State
    {
        private readonly AssignorInput _input;
        private readonly Dictionary<Guid, int> _topicIndex = [];
        // _owners[t][p]: index of the member that partition p of topic t goes to, or -1.
        private readonly int[][] _owners;
        private readonly int[] _counts;
        // Scratch for BalancePass: a member's partitions of the topic being balanced.
        private readonly List<int>?[] _held;

        public State(AssignorInput input)
        {
            _input = input;
            _owners = new int[input.TopicIds.Length][];
            for (var t = 0; t < input.TopicIds.Length; t++)
            {
                _topicIndex[input.TopicIds[t]] = t;
                _owners[t] = new int[input.PartitionCounts[t]];
                Array.Fill(_owners[t], -1);
            }

            _counts = new int[input.Members.Length];
            _held = new List<int>?[input.Members.Length];
        }

        public void Keep(IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> currentTarget)
        {
            for (var m = 0; m < _input.Members.Length; m++)
            {
                var member = _input.Members[m];
                if (!currentTarget.TryGetValue(member.MemberId, out var previous))
                {
                    continue;
                }

                foreach (var tp in previous)
                {
                    if (_topicIndex.TryGetValue(tp.TopicId, out var t)
                        && (uint)tp.Partition < (uint)_owners[t].Length
                        && _owners[t][tp.Partition] == -1
                        && member.SubscribedTopicIds.Contains(tp.TopicId))
                    {
                        _owners[t][tp.Partition] = m;
                        _counts[m]++;
                    }
                }
            }
        }

        public void Fill(int[] order)
        {
            var queue = new PriorityQueue<int, (int Count, int Member)>();
            foreach (var t in order)
            {
                var owners = _owners[t];
                queue.Clear();
                foreach (var m in _input.Subscribers[_input.TopicIds[t]])
                {
                    queue.Enqueue(m, (_counts[m], m));
                }

                for (var p = 0; p < owners.Length; p++)
                {
                    if (owners[p] != -1)
                    {
                        continue;
                    }

                    // Only this topic's subscribers change count while it is filled, so the queue stays exact.
                    var m = queue.Dequeue();
                    owners[p] = m;
                    _counts[m]++;
                    queue.Enqueue(m, (_counts[m], m));
                }
            }
        }

        /// <summary>One pass of Balance over all topics; returns how many partitions moved.</summary>
        public int BalancePass(int[] order)
        {
            var moved = 0;
            foreach (var t in order)
            {
                var subscribers = _input.Subscribers[_input.TopicIds[t]];
                if (subscribers.Length > 1)
                {
                    moved += BalanceTopic(_owners[t], subscribers);
                }
            }

            return moved;
        }

        private int BalanceTopic(int[] owners, int[] subscribers)
        {
            // Cheap test first: most passes over most topics find nothing to do.
            var least = int.MaxValue;
            foreach (var m in subscribers)
            {
                least = Math.Min(least, _counts[m]);
            }

            var most = 0;
            foreach (var m in owners)
            {
                most = Math.Max(most, _counts[m]);
            }

            if (most <= least + 1)
            {
                return 0;
            }

            foreach (var m in subscribers)
            {
                _held[m] = [];
            }

            for (var p = 0; p < owners.Length; p++)
            {
                _held[owners[p]]!.Add(p);
            }

            var receivers = new SortedSet<(int Count, int Member)>();
            var donors = new SortedSet<(int Count, int Member)>();
            foreach (var m in subscribers)
            {
                receivers.Add((_counts[m], m));
                if (_held[m]!.Count > 0)
                {
                    donors.Add((_counts[m], m));
                }
            }

            var moved = 0;
            while (donors.Max.Count > receivers.Min.Count + 1)
            {
                var donor = donors.Max.Member;
                var receiver = receivers.Min.Member;
                Remove(donor, receivers, donors);
                Remove(receiver, receivers, donors);
                // The donor's highest partition of the topic moves; any fixed choice keeps the result deterministic.
                var donorHeld = _held[donor]!;
                var p = donorHeld[^1];
                donorHeld.RemoveAt(donorHeld.Count - 1);
                owners[p] = receiver;
                _held[receiver]!.Add(p);
                _counts[donor]--;
                _counts[receiver]++;
                Add(donor, receivers, donors);
                Add(receiver, receivers, donors);
                moved++;
            }

            foreach (var m in subscribers)
            {
                _held[m] = null;
            }

            return moved;
        }

        private void Remove(int m, SortedSet<(int, int)> receivers, SortedSet<(int, int)> donors)
        {
            receivers.Remove((_counts[m], m));
            donors.Remove((_counts[m], m));
        }

        private void Add(int m, SortedSet<(int, int)> receivers, SortedSet<(int, int)> donors)
        {
            receivers.Add((_counts[m], m));
            if (_held[m]!.Count > 0)
            {
                donors.Add((_counts[m], m));
            }
        }

        public IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> Result()
        {
            var result = _input.EmptyResult(out var perMember);
            for (var t = 0; t < _owners.Length; t++)
            {
                var topicId = _input.TopicIds[t];
                var owners = _owners[t];
                for (var p = 0; p < owners.Length; p++)
                {
                    perMember[owners[p]].Add(new TopicPartition(topicId, p));
                }
            }

            return result;
        }
    }
}
