using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Grains.Metadata;

/// <summary>
/// Places replicas as Kafka does: brokers ordered so that racks alternate, each partition's first replica (its
/// preferred leader) on the next broker in turn, followers shifted so that every broker pair shares load, and no two
/// replicas of a partition on one broker. Deterministic for a given topic name and broker set.
/// </summary>
public static class ReplicaAssignment
{
    public static IReadOnlyList<IReadOnlyList<int>> Assign(
        string topic, int firstPartition, int count, short replicationFactor, IReadOnlyList<BrokerImage> brokers)
    {
        if (brokers.Count == 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidReplicationFactor, "No broker is registered and unfenced, so no replica can be placed; start brokers first.");
        }

        if (replicationFactor < 1 || replicationFactor > brokers.Count)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidReplicationFactor,
                $"Replication factor {replicationFactor} is not possible with {brokers.Count} available broker{(brokers.Count == 1 ? "" : "s")}: use 1 to {brokers.Count}.");
        }

        var ordered = RackAlternating(brokers);
        var rackOf = brokers.ToDictionary(b => b.Record.BrokerId, b => b.Record.Rack ?? "");
        var rackCount = rackOf.Values.Distinct(StringComparer.Ordinal).Count();
        var n = ordered.Count;

        // A stable start per topic spreads preferred leaders of different topics over different brokers.
        var start = (int)(StableHash(topic) % (uint)n);
        var result = new List<IReadOnlyList<int>>(count);
        for (var i = 0; i < count; i++)
        {
            var p = firstPartition + i;
            var first = (start + p) % n;
            var shift = n > 1 ? 1 + (p / n % (n - 1)) : 0;
            var replicas = new List<int>(replicationFactor) { ordered[first] };
            var racks = new HashSet<string>(StringComparer.Ordinal) { rackOf[ordered[first]] };
            for (var r = 1; r < replicationFactor; r++)
            {
                // Walk from the shifted position to the first broker not yet used, on a rack not yet used while
                // unused racks remain (as Kafka's rack-aware assignment does).
                var position = (first + shift + r - 1) % n;
                var chosen = -1;
                for (var step = 0; step < n && chosen < 0; step++)
                {
                    var candidate = ordered[(position + step) % n];
                    if (!replicas.Contains(candidate) && (racks.Count >= rackCount || !racks.Contains(rackOf[candidate])))
                    {
                        chosen = candidate;
                    }
                }

                replicas.Add(chosen);
                racks.Add(rackOf[chosen]);
            }

            result.Add(replicas);
        }

        return result;
    }

    /// <summary>Checks an explicit assignment: every partition the same size, no duplicates, only registered brokers.</summary>
    public static void Validate(IReadOnlyList<IReadOnlyList<int>> assignment, MetadataImage image)
    {
        if (assignment.Count == 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidReplicaAssignment, "The replica assignment lists no partitions.");
        }

        var size = assignment[0].Count;
        for (var p = 0; p < assignment.Count; p++)
        {
            var replicas = assignment[p];
            string? problem = null;
            if (replicas is null || replicas.Count == 0)
            {
                problem = "has no replicas";
            }
            else if (replicas.Count != size)
            {
                problem = $"has {replicas.Count} replicas but partition 0 has {size}; all partitions need the same replication factor";
            }
            else if (replicas.Distinct().Count() != replicas.Count)
            {
                problem = "names a broker twice";
            }
            else if (replicas.Where(b => !image.Brokers.ContainsKey(b)).Select(b => (int?)b).FirstOrDefault() is { } unknown)
            {
                problem = $"names broker {unknown}, which is not registered";
            }

            if (problem is not null)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidReplicaAssignment, $"Invalid replica assignment: partition {p} {problem}.");
            }
        }
    }

    private static List<int> RackAlternating(IReadOnlyList<BrokerImage> brokers)
    {
        var byRack = brokers
            .GroupBy(b => b.Record.Rack ?? "")
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new Queue<int>(g.Select(b => b.Record.BrokerId).Order()))
            .ToList();
        var ordered = new List<int>(brokers.Count);
        while (ordered.Count < brokers.Count)
        {
            foreach (var rack in byRack.Where(r => r.Count > 0))
            {
                ordered.Add(rack.Dequeue());
            }
        }

        return ordered;
    }

    private static uint StableHash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
