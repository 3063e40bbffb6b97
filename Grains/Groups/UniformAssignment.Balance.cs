namespace OrleansMeta.Grains.Groups;

/// <summary>Balancing differing subscriptions: single moves first (cheap, and they do most of the work), then chains.</summary>
internal sealed partial class UniformAssignment
{
    // Single-move passes are a fast path, not needed for correctness (chains finish the job), so a bound only decides
    // when the cheaper tool hands over.
    private const int MaxSingleMovePasses = 16;

    /// <summary>Evens counts out as far as the subscriptions allow.</summary>
    public void Balance()
    {
        var order = TopicsMostConstrainedFirst();
        var held = new List<int>?[_input.Members.Length];
        for (var pass = 0; pass < MaxSingleMovePasses; pass++)
        {
            var moved = 0;
            foreach (var t in order)
            {
                moved += SingleMoves(t, held);
            }

            if (moved == 0)
            {
                break;
            }
        }

        var heldCounts = HeldCounts();
        var subscribed = SubscribedTopics();
        while (true)
        {
            if (!MoveAlongChain(heldCounts, subscribed))
            {
                break;
            }
        }
    }

    // While the topic's most loaded owner has two partitions more than its least loaded subscriber, one moves.
    private int SingleMoves(int t, List<int>?[] held)
    {
        var owners = _owners[t];
        var subscribers = Subscribers(t);
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
            held[m] = [];
        }

        for (var p = 0; p < owners.Length; p++)
        {
            held[owners[p]]!.Add(p);
        }

        var receivers = new SortedSet<(int Count, int Member)>();
        var donors = new SortedSet<(int Count, int Member)>();
        foreach (var m in subscribers)
        {
            receivers.Add((_counts[m], m));
            if (held[m]!.Count > 0)
            {
                donors.Add((_counts[m], m));
            }
        }

        var moved = 0;
        while (donors.Max.Count > receivers.Min.Count + 1)
        {
            var donor = donors.Max.Member;
            var receiver = receivers.Min.Member;
            foreach (var m in (int[])[donor, receiver])
            {
                receivers.Remove((_counts[m], m));
                donors.Remove((_counts[m], m));
            }

            // The donor's highest partition of the topic moves; any fixed choice keeps the result deterministic.
            var donorHeld = held[donor]!;
            var p = donorHeld[^1];
            donorHeld.RemoveAt(donorHeld.Count - 1);
            owners[p] = receiver;
            held[receiver]!.Add(p);
            _counts[donor]--;
            _counts[receiver]++;
            foreach (var m in (int[])[donor, receiver])
            {
                receivers.Add((_counts[m], m));
                if (held[m]!.Count > 0)
                {
                    donors.Add((_counts[m], m));
                }
            }

            moved++;
        }

        foreach (var m in subscribers)
        {
            held[m] = null;
        }

        return moved;
    }

    // heldCounts[t][i]: how many partitions of topic t its i-th subscriber owns.
    private int[][] HeldCounts()
    {
        var heldCounts = new int[_owners.Length][];
        for (var t = 0; t < _owners.Length; t++)
        {
            var subscribers = Subscribers(t);
            heldCounts[t] = new int[subscribers.Length];
            foreach (var m in _owners[t])
            {
                heldCounts[t][Array.BinarySearch(subscribers, m)]++;
            }
        }

        return heldCounts;
    }

    /// <summary>
    /// Finds a chain from a member to one with at least two partitions fewer, each link a partition of a topic the
    /// next member subscribes to, and shifts one partition along every link: only the ends change count. Searches
    /// backwards, breadth first, from the least loaded members, so chains are as short as they can be. Returns false
    /// when there is none, i.e. the balance is the best the subscriptions allow.
    /// </summary>
    private bool MoveAlongChain(int[][] heldCounts, List<int>[] subscribed)
    {
        var n = _input.Members.Length;
        if (n < 2)
        {
            return false;
        }

        var least = _counts.Min();
        var most = _counts.Max();
        for (var level = least; level + 2 <= most; level++)
        {
            // via[x] = (member x gives to, topic it gives from); (-1, -1) for the chain's last member.
            var via = new (int Member, int Topic)[n];
            var reached = new bool[n];
            var expanded = new bool[_owners.Length];
            var queue = new Queue<int>();
            for (var m = 0; m < n; m++)
            {
                if (_counts[m] <= level)
                {
                    reached[m] = true;
                    via[m] = (-1, -1);
                    queue.Enqueue(m);
                }
            }

            while (queue.TryDequeue(out var receiver))
            {
                foreach (var t in subscribed[receiver])
                {
                    if (expanded[t])
                    {
                        continue;
                    }

                    // Every owner of t can give to any subscriber of t: the first one to reach t stands for all.
                    expanded[t] = true;
                    var subscribers = Subscribers(t);
                    for (var i = 0; i < subscribers.Length; i++)
                    {
                        var giver = subscribers[i];
                        if (reached[giver] || heldCounts[t][i] == 0)
                        {
                            continue;
                        }

                        reached[giver] = true;
                        via[giver] = (receiver, t);
                        if (_counts[giver] >= level + 2)
                        {
                            Shift(giver, via, heldCounts);
                            return true;
                        }

                        queue.Enqueue(giver);
                    }
                }
            }
        }

        return false;
    }

    private void Shift(int first, (int Member, int Topic)[] via, int[][] heldCounts)
    {
        var giver = first;
        while (via[giver].Member != -1)
        {
            var (receiver, t) = via[giver];
            var owners = _owners[t];
            var p = Array.LastIndexOf(owners, giver);
            owners[p] = receiver;
            var subscribers = Subscribers(t);
            heldCounts[t][Array.BinarySearch(subscribers, giver)]--;
            heldCounts[t][Array.BinarySearch(subscribers, receiver)]++;
            giver = receiver;
        }

        _counts[first]--;
        _counts[giver]++;
    }

    // Per member, the indexes of the topics it subscribes to, ascending.
    private List<int>[] SubscribedTopics()
    {
        var subscribed = new List<int>[_input.Members.Length];
        for (var m = 0; m < subscribed.Length; m++)
        {
            subscribed[m] = [];
        }

        for (var t = 0; t < _owners.Length; t++)
        {
            foreach (var m in Subscribers(t))
            {
                subscribed[m].Add(t);
            }
        }

        return subscribed;
    }
}
