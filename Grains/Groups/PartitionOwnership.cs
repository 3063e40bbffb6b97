namespace OrleansMeta.Grains.Groups;

/// <summary>
/// A consumer group's inverse index: which member owns each partition, owning meaning assigned or pending revocation
/// (the member may still be consuming it). <see cref="Reconciliation.Next"/> asks it whether a partition is free; the
/// group updates it whenever a member's assignment changes or the member leaves.
/// </summary>
/// <remarks>
/// It also refuses to record a second owner for a partition (<see cref="Set"/> throws and changes nothing). A correct
/// group never triggers that; it is the last line of defence against handing a partition to two consumers.
/// Not thread-safe: it lives inside one grain activation.
/// </remarks>
public sealed class PartitionOwnership
{
    private readonly Dictionary<TopicPartition, string> _owners = [];
    private readonly Dictionary<string, HashSet<TopicPartition>> _byMember = new(StringComparer.Ordinal);

    /// <summary>How many partitions have an owner.</summary>
    public int Count => _owners.Count;

    /// <summary>The member that owns <paramref name="partition"/>, or null.</summary>
    public string? OwnerOf(TopicPartition partition) => _owners.GetValueOrDefault(partition);

    /// <summary>Whether a member other than <paramref name="memberId"/> owns <paramref name="partition"/>.</summary>
    public bool OwnedByOther(string memberId, TopicPartition partition) =>
        _owners.TryGetValue(partition, out var owner) && !string.Equals(owner, memberId, StringComparison.Ordinal);

    /// <summary><see cref="OwnedByOther(string, TopicPartition)"/> for one member, in the shape
    /// <see cref="Reconciliation.Next"/> takes.</summary>
    public Func<TopicPartition, bool> OwnedByOtherThan(string memberId) => partition => OwnedByOther(memberId, partition);

    /// <summary>What <paramref name="memberId"/> owns (empty if nothing).</summary>
    public IReadOnlySet<TopicPartition> OwnedBy(string memberId) =>
        _byMember.TryGetValue(memberId, out var owned) ? owned : (IReadOnlySet<TopicPartition>)new HashSet<TopicPartition>();

    /// <summary>
    /// Throws <see cref="InvalidOperationException"/> if giving <paramref name="memberId"/> the assignment
    /// <paramref name="next"/> would give some partition a second owner. Call it before committing an assignment.
    /// </summary>
    public void EnsureNoOtherOwner(string memberId, MemberAssignment next)
    {
        ArgumentNullException.ThrowIfNull(memberId);
        ArgumentNullException.ThrowIfNull(next);
        List<string>? conflicts = null;
        foreach (var partition in Owned(next))
        {
            if (OwnedByOther(memberId, partition))
            {
                (conflicts ??= []).Add($"{partition.TopicId}-{partition.Partition} (owned by '{_owners[partition]}')");
            }
        }

        if (conflicts is not null)
        {
            throw new InvalidOperationException(
                $"Member '{memberId}' at epoch {next.MemberEpoch} would own {conflicts.Count} partition(s) another member "
                + $"still owns: {string.Join(", ", conflicts.Take(10))}{(conflicts.Count > 10 ? ", ..." : "")}.");
        }
    }

    /// <summary>
    /// Records that <paramref name="memberId"/> now owns exactly what <paramref name="assignment"/> assigns or has
    /// pending revocation. Throws, changing nothing, if that would give a partition two owners.
    /// </summary>
    public void Set(string memberId, MemberAssignment assignment)
    {
        EnsureNoOtherOwner(memberId, assignment);
        var now = new HashSet<TopicPartition>(Owned(assignment));
        if (_byMember.Remove(memberId, out var before))
        {
            foreach (var partition in before)
            {
                if (!now.Contains(partition))
                {
                    _owners.Remove(partition);
                }
            }
        }

        foreach (var partition in now)
        {
            _owners[partition] = memberId;
        }

        if (now.Count > 0)
        {
            _byMember[memberId] = now;
        }
    }

    /// <summary>Releases everything <paramref name="memberId"/> owns (it left or was fenced).</summary>
    public void Remove(string memberId)
    {
        if (_byMember.Remove(memberId, out var before))
        {
            foreach (var partition in before)
            {
                _owners.Remove(partition);
            }
        }
    }

    /// <summary>Rebuilds the index from every member's assignment, e.g. after loading the group's state. Throws if
    /// two members own one partition.</summary>
    public static PartitionOwnership From(IEnumerable<KeyValuePair<string, MemberAssignment>> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        var ownership = new PartitionOwnership();
        foreach (var (memberId, assignment) in members)
        {
            ownership.Set(memberId, assignment);
        }

        return ownership;
    }

    private static IEnumerable<TopicPartition> Owned(MemberAssignment assignment) =>
        assignment.Assigned.Concat(assignment.PendingRevocation);
}
