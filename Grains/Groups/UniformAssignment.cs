namespace OrleansMeta.Grains.Groups;

/// <summary>
/// One run of <see cref="UniformAssignor"/>: who gets each partition, as member indexes in arrays per topic, so that a
/// group of 1000 members and 100k partitions is assigned with a few passes over flat arrays.
/// </summary>
/// <remarks>
/// Costs, for P partitions, N members and S subscriptions (member-topic pairs): Keep O(P); the quota path O(P + N log N);
/// the least-loaded fill O(P log N); a balancing pass O(P + S log N) plus O(log N) per move; a chain search O(N + S)
/// plus O(P) per chain, and there are only as many chains as the single moves left imbalance behind.
/// </remarks>
internal sealed partial class UniformAssignment
{
    private readonly AssignorInput _input;
    private readonly Dictionary<Guid, int> _topicIndex = [];
    // _owners[t][p]: the index of the member that partition p of topic t goes to, or -1 while it has none.
    private readonly int[][] _owners;
    private readonly int[] _counts;

    public UniformAssignment(AssignorInput input)
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
    }

    /// <summary>Every topic is subscribed to by every member (topics that do not exist do not count).</summary>
    public bool IsHomogeneous => _input.TopicIds.All(id => _input.Subscribers[id].Length == _input.Members.Length);

    /// <summary>Keeps each member's previous partitions that are still valid for it.</summary>
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

    /// <summary>Identical subscriptions: quotas, surplus released from the end, free partitions filled in order.</summary>
    public void AssignByQuota()
    {
        var n = _input.Members.Length;
        if (n == 0)
        {
            return;
        }

        var total = _input.PartitionCounts.Sum(c => (long)c);
        var floor = (int)(total / n);
        var extra = (int)(total % n);
        // The extra partitions go to the members that kept the most, so that none of them has to give one up.
        var byKept = Enumerable.Range(0, n).ToArray();
        Array.Sort(byKept, (a, b) => _counts[a] != _counts[b] ? _counts[b].CompareTo(_counts[a]) : a.CompareTo(b));
        var quota = new int[n];
        for (var rank = 0; rank < n; rank++)
        {
            quota[byKept[rank]] = floor + (rank < extra ? 1 : 0);
        }

        for (var t = _owners.Length - 1; t >= 0; t--)
        {
            var owners = _owners[t];
            for (var p = owners.Length - 1; p >= 0; p--)
            {
                var m = owners[p];
                if (m >= 0 && _counts[m] > quota[m])
                {
                    owners[p] = -1;
                    _counts[m]--;
                }
            }
        }

        var next = 0;
        foreach (var owners in _owners)
        {
            for (var p = 0; p < owners.Length; p++)
            {
                if (owners[p] != -1)
                {
                    continue;
                }

                while (_counts[next] >= quota[next])
                {
                    next++;
                }

                owners[p] = next;
                _counts[next]++;
            }
        }
    }

    /// <summary>Differing subscriptions: each free partition to the least loaded subscriber of its topic.</summary>
    public void FillLeastLoaded()
    {
        var queue = new PriorityQueue<int, (int Count, int Member)>();
        foreach (var t in TopicsMostConstrainedFirst())
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

    /// <summary>The target, one set per member.</summary>
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

    // Most partitions per subscriber first (they leave the least room to even out later), then fewer subscribers,
    // then topic id: the order Kafka's heterogeneous builder uses.
    private int[] TopicsMostConstrainedFirst()
    {
        var order = Enumerable.Range(0, _input.TopicIds.Length).ToArray();
        Array.Sort(order, (a, b) =>
        {
            long pa = _input.PartitionCounts[a], sa = Subscribers(a).Length;
            long pb = _input.PartitionCounts[b], sb = Subscribers(b).Length;
            var byDensity = (pb * sa).CompareTo(pa * sb);
            if (byDensity != 0)
            {
                return byDensity;
            }

            var bySubscribers = sa.CompareTo(sb);
            return bySubscribers != 0 ? bySubscribers : a.CompareTo(b);
        });
        return order;
    }

    private int[] Subscribers(int t) => _input.Subscribers[_input.TopicIds[t]];
}
