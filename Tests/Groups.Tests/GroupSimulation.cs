using OrleansMeta.Grains.Groups;

namespace OrleansMeta.Groups.Tests;

/// <summary>
/// A consumer group and its clients, driven by random events, holding partitions only through
/// <see cref="Reconciliation.Next"/> as the group grain will. Every change is recorded in two histories, the group's
/// view (assigned plus pending revocation) and what each client really consumes, and the group's
/// <see cref="PartitionOwnership"/> refuses a second owner.
/// </summary>
/// <remarks>
/// A client is modelled as Kafka's: one heartbeat at a time, the answer arrives with it, but acting on the answer
/// (revoking, then taking new partitions) happens later, at a random moment. Until then its heartbeats report what it
/// still consumes, or sometimes no owned list at all.
/// </remarks>
internal sealed class GroupSimulation(int seed, IPartitionAssignor assignor, bool homogeneous)
{
    private const int MaxMembers = 8;
    private readonly Random _random = new(seed);
    private readonly Dictionary<Guid, AssignorTopic> _topics = Scenario.MakeTopics(6, 3, 10);
    private readonly SortedDictionary<string, AssignorMember> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MemberAssignment> _assignments = [];
    private readonly Dictionary<string, Client> _clients = [];
    private readonly PartitionOwnership _ownership = new();
    private IReadOnlyDictionary<string, IReadOnlySet<TopicPartition>> _target = new Dictionary<string, IReadOnlySet<TopicPartition>>();
    private int _nextMemberId;

    public AssignmentHistory GroupHistory { get; } = new();
    public AssignmentHistory ClientHistory { get; } = new();
    public int TargetEpoch { get; private set; }

    /// <summary>How often a member entered each state: proof that the run exercised revocation and withholding.</summary>
    public Dictionary<MemberState, int> StatesEntered { get; } = [];

    /// <summary>Runs <paramref name="rounds"/> random events.</summary>
    public void Run(int rounds)
    {
        for (var round = 0; round < rounds; round++)
        {
            var roll = _random.Next(100);
            if (roll < 6 && _members.Count < MaxMembers || _members.Count == 0)
            {
                Join();
            }
            else if (roll < 10)
            {
                Leave(RandomMember());
            }
            else if (roll < 13)
            {
                ChangeSubscriptionOrPartitions();
            }
            else if (roll < 60)
            {
                Heartbeat(RandomMember(), reportOwned: _random.Next(6) > 0);
            }
            else if (roll < 80)
            {
                _clients[RandomMember()].Apply(ClientHistory, revokeOnly: _random.Next(3) == 0);
            }
        }
    }

    /// <summary>Delivers every answer and heartbeat until the group is stable; returns the rounds it took, or -1.</summary>
    public int Settle(int maxRounds)
    {
        for (var round = 1; round <= maxRounds; round++)
        {
            foreach (var memberId in _members.Keys)
            {
                _clients[memberId].Apply(ClientHistory, revokeOnly: false);
                Heartbeat(memberId, reportOwned: true);
            }

            if (_members.Keys.All(IsSettled))
            {
                return round;
            }
        }

        return -1;
    }

    public string Describe() =>
        $"seed {seed}, {assignor.Name}, {(homogeneous ? "homogeneous" : "heterogeneous")}, target epoch {TargetEpoch}: "
        + string.Join("; ", _members.Keys.Select(id =>
            $"{id} {_assignments[id].State}@{_assignments[id].MemberEpoch} assigned {_assignments[id].Assigned.Count}/{_target[id].Count}, "
            + $"pending {_assignments[id].PendingRevocation.Count}, client owns {_clients[id].Owned.Count}"));

    private bool IsSettled(string memberId) =>
        _assignments[memberId] is { State: MemberState.Stable } assignment
        && assignment.MemberEpoch == TargetEpoch
        && assignment.Assigned.SetEquals(_target[memberId])
        && _clients[memberId].Owned.SetEquals(_target[memberId]);

    private string RandomMember() => _members.Keys.ElementAt(_random.Next(_members.Count));

    private void Join()
    {
        var id = $"m{_nextMemberId++:D3}";
        var subscription = homogeneous ? _topics.Keys.ToHashSet() : RandomSubscription();
        _members[id] = new AssignorMember(id, null, null, subscription);
        _assignments[id] = Reconciliation.Joining;
        _clients[id] = new Client(id);
        Reassign();
    }

    private void Leave(string memberId)
    {
        // A leaving client stops consuming first, then the group forgets it.
        ClientHistory.Leave(memberId);
        GroupHistory.Leave(memberId);
        _ownership.Remove(memberId);
        _members.Remove(memberId);
        _assignments.Remove(memberId);
        _clients.Remove(memberId);
        Reassign();
    }

    private void ChangeSubscriptionOrPartitions()
    {
        if (_random.Next(2) == 0 && !homogeneous)
        {
            var id = RandomMember();
            _members[id] = _members[id] with { SubscribedTopicIds = RandomSubscription() };
        }
        else
        {
            var topic = _topics.Values.ElementAt(_random.Next(_topics.Count));
            _topics[topic.TopicId] = topic with { PartitionCount = topic.PartitionCount + 1 + _random.Next(3) };
        }

        Reassign();
    }

    private HashSet<Guid> RandomSubscription() =>
        _topics.Keys.Where(_ => _random.Next(2) == 0).DefaultIfEmpty(_topics.Keys.First()).ToHashSet();

    private void Reassign()
    {
        var previous = _members.Keys.Where(_target.ContainsKey).ToDictionary(id => id, id => _target[id]);
        _target = assignor.Assign(_members.Values.ToList(), _topics, previous);
        TargetEpoch++;
    }

    private void Heartbeat(string memberId, bool reportOwned)
    {
        var client = _clients[memberId];
        var current = _assignments[memberId];
        var next = Reconciliation.Next(
            current, TargetEpoch, _target[memberId], reportOwned ? client.Owned.ToList() : null, _ownership.OwnedByOtherThan(memberId));
        if (!ReferenceEquals(next, current))
        {
            _ownership.Set(memberId, next);
            _assignments[memberId] = next;
            GroupHistory.Observe(memberId, next.MemberEpoch, next.Assigned.Concat(next.PendingRevocation));
            if (next.State != current.State)
            {
                StatesEntered[next.State] = StatesEntered.GetValueOrDefault(next.State) + 1;
            }
        }

        client.Answer = (next.MemberEpoch, next.Assigned);
    }

    private sealed class Client(string id)
    {
        public HashSet<TopicPartition> Owned { get; private set; } = [];
        public (int Epoch, IReadOnlySet<TopicPartition> Assigned)? Answer { get; set; }

        /// <summary>Acts on the latest answer: drops what it no longer has, and (unless only revoking) takes the rest.</summary>
        public void Apply(AssignmentHistory history, bool revokeOnly)
        {
            if (Answer is not { } answer)
            {
                return;
            }

            Owned = revokeOnly ? Owned.Where(answer.Assigned.Contains).ToHashSet() : answer.Assigned.ToHashSet();
            history.Observe(id, answer.Epoch, Owned);
        }
    }
}
