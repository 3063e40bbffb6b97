using System.Globalization;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// Checks a history of who owned which partition: feed it observations in the order they happened (a member, its
/// epoch, everything it owns at that moment) and it reports every partition that two members owned at once. For tests
/// and the chaos checker; not used by the grains.
/// </summary>
/// <remarks>
/// <para>Two checks, each reported in <see cref="Violations"/> with the observations involved:</para>
/// <list type="bullet">
/// <item>Overlap in time: a member's observation holds until its next one (or <see cref="Leave"/>). A partition in a
/// member's observation while another member's latest observation still holds it is owned twice.</item>
/// <item>Same epoch, at any time: two members seen owning one partition at the same member epoch. The target of one
/// epoch gives each partition to one member and a member at epoch e owns only partitions of its target at e (see
/// <see cref="Reconciliation"/>), so this holds even when observations from different processes are not ordered.
/// Turn it off for histories whose epochs do not mean that.</item>
/// </list>
/// <para>Also reported: a member whose epoch goes backwards between two observations without leaving in between.</para>
/// </remarks>
public sealed class AssignmentHistory(bool checkSameEpoch = true)
{
    private readonly Dictionary<string, Held> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<TopicPartition, List<string>> _holders = [];
    private readonly Dictionary<(TopicPartition Partition, int Epoch), (string MemberId, long Observation)> _byEpoch = [];
    private readonly List<string> _violations = [];
    private long _observations;

    /// <summary>Every violation so far, one readable sentence each, in the order found.</summary>
    public IReadOnlyList<string> Violations => _violations;

    /// <summary>How many observations were fed.</summary>
    public long Observations => _observations;

    /// <summary>Records that <paramref name="memberId"/>, at <paramref name="memberEpoch"/>, owns exactly
    /// <paramref name="owned"/> from now until its next observation.</summary>
    public void Observe(string memberId, int memberEpoch, IEnumerable<TopicPartition> owned)
    {
        ArgumentNullException.ThrowIfNull(memberId);
        ArgumentNullException.ThrowIfNull(owned);
        var number = ++_observations;
        var now = owned.ToHashSet();
        if (_members.TryGetValue(memberId, out var before))
        {
            if (memberEpoch < before.Epoch)
            {
                Report($"observation #{number}: member '{memberId}' went back from epoch {before.Epoch} "
                    + $"(observation #{before.Observation}) to epoch {memberEpoch}");
            }

            foreach (var partition in before.Partitions)
            {
                if (!now.Contains(partition))
                {
                    Release(partition, memberId);
                }
            }
        }

        // Sorted so that the violations of one observation come out in a fixed order.
        foreach (var partition in now.Order())
        {
            if (before is null || !before.Partitions.Contains(partition))
            {
                Acquire(partition, memberId, memberEpoch, number);
            }

            if (checkSameEpoch)
            {
                if (_byEpoch.TryGetValue((partition, memberEpoch), out var first))
                {
                    if (!string.Equals(first.MemberId, memberId, StringComparison.Ordinal))
                    {
                        Report($"observation #{number}: partition {Name(partition)} owned at epoch {memberEpoch} by member "
                            + $"'{memberId}' and, in observation #{first.Observation}, by member '{first.MemberId}'");
                    }
                }
                else
                {
                    _byEpoch[(partition, memberEpoch)] = (memberId, number);
                }
            }
        }

        _members[memberId] = new Held(memberEpoch, number, now);
    }

    /// <summary>Records that <paramref name="memberId"/> owns nothing any more and may come back at any epoch.</summary>
    public void Leave(string memberId)
    {
        if (_members.Remove(memberId, out var before))
        {
            foreach (var partition in before.Partitions)
            {
                Release(partition, memberId);
            }
        }
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> listing the first violations, if there are any.</summary>
    public void ThrowIfViolated()
    {
        if (_violations.Count > 0)
        {
            throw new InvalidOperationException(
                $"{_violations.Count} ownership violation(s) in {_observations} observations:{Environment.NewLine}"
                + string.Join(Environment.NewLine, _violations.Take(20)));
        }
    }

    private void Acquire(TopicPartition partition, string memberId, int epoch, long number)
    {
        if (!_holders.TryGetValue(partition, out var holders))
        {
            _holders[partition] = holders = [];
        }

        foreach (var other in holders)
        {
            var held = _members[other];
            Report($"observation #{number}: partition {Name(partition)} owned by member '{memberId}' at epoch {epoch} "
                + $"while member '{other}' still owns it at epoch {held.Epoch} (observation #{held.Observation})");
        }

        holders.Add(memberId);
    }

    private void Release(TopicPartition partition, string memberId)
    {
        var holders = _holders[partition];
        holders.Remove(memberId);
        if (holders.Count == 0)
        {
            _holders.Remove(partition);
        }
    }

    private void Report(string violation) => _violations.Add(violation);

    private static string Name(TopicPartition partition) =>
        string.Create(CultureInfo.InvariantCulture, $"{partition.TopicId}-{partition.Partition}");

    private sealed record Held(int Epoch, long Observation, HashSet<TopicPartition> Partitions);
}
