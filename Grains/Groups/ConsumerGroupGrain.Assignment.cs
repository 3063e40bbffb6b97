using System.Collections.Immutable;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Grains.Groups;

/// <summary>Subscriptions resolved against the image, target assignments, ownership, and the answer's shape.</summary>
internal sealed partial class ConsumerGroupGrain
{
    private ImmutableDictionary<Guid, string>? _resolvedNames;
    private readonly Dictionary<string, HashSet<Guid>> _regexMatches = new(StringComparer.Ordinal);
    private PartitionOwnership? _ownership;
    private ImmutableDictionary<string, TopicImage>? _resolvedTopics;
    private int _resolvedAtEpoch;
    private (Dictionary<Guid, int> Topics, Dictionary<string, HashSet<Guid>> PerMember) _resolved;

    /// <summary>Every subscribed topic with its partition count, and each member's subscribed topic ids. Computed again
    /// only when the image's topics or the group epoch (which every membership or subscription change moves) changed;
    /// regular expressions are matched again only when the set of topic names changed.</summary>
    private (Dictionary<Guid, int> Topics, Dictionary<string, HashSet<Guid>> PerMember) ResolveSubscriptions(MetadataImage metadata)
    {
        if (ReferenceEquals(_resolvedTopics, metadata.Topics) && _resolvedAtEpoch == state.State.GroupEpoch)
        {
            return _resolved;
        }

        if (!ReferenceEquals(_resolvedNames, metadata.TopicNames))
        {
            _regexMatches.Clear();
            _resolvedNames = metadata.TopicNames;
        }

        var topics = new Dictionary<Guid, int>();
        var perMember = new Dictionary<string, HashSet<Guid>>(StringComparer.Ordinal);
        foreach (var member in state.State.Members.Values)
        {
            var ids = new HashSet<Guid>();
            foreach (var name in member.SubscribedTopicNames)
            {
                if (metadata.Topics.TryGetValue(name, out var topic))
                {
                    ids.Add(topic.Topic.TopicId);
                }
            }

            if (member.SubscribedTopicRegex is { } pattern)
            {
                if (!_regexMatches.TryGetValue(pattern, out var matches))
                {
                    var regex = Regex(pattern);
                    matches = [.. metadata.Topics.Values.Where(t => regex.IsMatch(t.Topic.Name)).Select(t => t.Topic.TopicId)];
                    _regexMatches[pattern] = matches;
                }

                ids.UnionWith(matches);
            }

            foreach (var id in ids)
            {
                topics[id] = metadata.TopicNames.TryGetValue(id, out var name) ? metadata.Topics[name].Partitions.Length : 0;
            }

            perMember[member.MemberId] = ids;
        }

        _resolved = (topics, perMember);
        _resolvedTopics = metadata.Topics;
        _resolvedAtEpoch = state.State.GroupEpoch;
        return _resolved;
    }

    private System.Text.RegularExpressions.Regex Regex(string pattern)
    {
        if (!_regexes.TryGetValue(pattern, out var regex))
        {
            regex = GroupRules.CompileSubscription(pattern);
            _regexes[pattern] = regex;
        }

        return regex;
    }

    private static bool SameTopics(Dictionary<Guid, int> a, Dictionary<Guid, int> b)
        => a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var count) && count == kv.Value);

    /// <summary>Runs the group's assignor and stores every member's target at the current group epoch.</summary>
    private void ComputeTarget(MetadataImage metadata, Dictionary<string, HashSet<Guid>> perMember)
    {
        var group = state.State;
        group.Assignor = ChooseAssignor();
        var assignor = PartitionAssignors.Get(group.Assignor);
        var members = group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal)
            .Select(m => new AssignorMember(m.MemberId, m.InstanceId, m.RackId, perMember.TryGetValue(m.MemberId, out var ids) ? ids : []))
            .ToList();
        var topics = group.SubscribedTopics
            .Where(kv => metadata.TopicNames.ContainsKey(kv.Key))
            .ToDictionary(kv => kv.Key, kv => new AssignorTopic(kv.Key, metadata.TopicNames[kv.Key], kv.Value));
        var current = group.Members.Values.ToDictionary(m => m.MemberId, m => (IReadOnlySet<TopicPartition>)m.Target.ToHashSet(), StringComparer.Ordinal);
        var target = assignor.Assign(members, topics, current);
        foreach (var member in group.Members.Values)
        {
            List<TopicPartition> next = target.TryGetValue(member.MemberId, out var partitions) ? [.. partitions.Order()] : [];
            // Only a member whose target moved is described (and logged) again, as a sticky assignor moves few; and one
            // naming a topic gone from the image, whose description now names it differently.
            if (!next.SequenceEqual(member.Target) || NamesMissingTopic(member, metadata))
            {
                member.Target = next;
                Touch(member);
            }
        }

        group.AssignmentEpoch = group.GroupEpoch;
        _dirty = true;
        LogTargetComputed(logger, GroupId, group.AssignmentEpoch, group.Assignor, members.Count, topics.Values.Sum(t => t.PartitionCount));
    }

    private static bool NamesMissingTopic(GroupMember member, MetadataImage metadata)
        => member.Assigned.Concat(member.PendingRevocation).Concat(member.Target).Any(p => !metadata.TopicNames.ContainsKey(p.TopicId));

    /// <summary>The assignor most members ask for (ties by name), or the cluster's default when none asks.</summary>
    private string ChooseAssignor() => state.State.Members.Values
        .Where(m => m.ServerAssignor is not null)
        .GroupBy(m => m.ServerAssignor!)
        .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
        .Select(g => g.Key)
        .FirstOrDefault() ?? _options.DefaultAssignor;

    /// <summary>Which member owns each partition (assigned or pending revocation), kept as members change rather than
    /// rebuilt per heartbeat; built from the state on first use. A failed write discards the activation, and it.</summary>
    private PartitionOwnership Ownership
        => _ownership ??= PartitionOwnership.From(state.State.Members.Select(m => KeyValuePair.Create(m.Key, m.Value.ToAssignment())));

    /// <summary>Starts the rebalance timeout when a member is asked to revoke; clears it once it has.</summary>
    private void TrackRevocation(GroupMember member)
    {
        if (member.State == MemberState.UnrevokedPartitions)
        {
            _revokeBy.TryAdd(member.MemberId, TimeProvider.GetTimestamp() + (long)(_options.RebalanceTimeout.TotalSeconds * TimeProvider.TimestampFrequency));
        }
        else
        {
            _revokeBy.Remove(member.MemberId);
        }
    }

    private static HashSet<TopicPartition> Flatten(IReadOnlyList<GroupTopicPartitions> owned, MetadataImage metadata)
    {
        var result = new HashSet<TopicPartition>();
        foreach (var topic in owned)
        {
            var id = topic.TopicId != Guid.Empty ? topic.TopicId
                : metadata.Topics.TryGetValue(topic.Topic ?? "", out var known) ? known.Topic.TopicId : Guid.Empty;
            if (id == Guid.Empty)
            {
                continue;
            }

            foreach (var partition in topic.Partitions)
            {
                result.Add(new TopicPartition(id, partition));
            }
        }

        return result;
    }

    private static List<GroupTopicPartitions> Describe(IEnumerable<TopicPartition> partitions, MetadataImage metadata)
        => [.. partitions.GroupBy(p => p.TopicId)
            .Select(g => new GroupTopicPartitions(g.Key, metadata.TopicNames.TryGetValue(g.Key, out var name) ? name : "", [.. g.Select(p => p.Partition).Order()]))
            .OrderBy(t => t.Topic, StringComparer.Ordinal)];

    private void ValidateHeartbeat(GroupHeartbeatRequest heartbeat)
    {
        GroupRules.ValidateGroupId(GroupId);
        GroupRules.ValidateMemberId(heartbeat.MemberId);
        if (heartbeat.MemberEpoch < -2)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                $"memberEpoch must be 0 (join), the epoch the last answer gave, -1 (leave) or -2 (a static member leaving for a moment); got {heartbeat.MemberEpoch}.");
        }

        if (heartbeat.InstanceId is { } instanceId)
        {
            GroupRules.ValidateInstanceId(instanceId);
        }
        else if (heartbeat.MemberEpoch == -2)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "memberEpoch -2 is for static members: it needs groupInstanceId.");
        }

        if (heartbeat.SubscribedTopicNames is { } names)
        {
            if (names.Count > GroupRules.MaxSubscribedTopics)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"subscribedTopicNames lists {names.Count} topics; at most {GroupRules.MaxSubscribedTopics} are allowed.");
            }

            foreach (var name in names)
            {
                TopicRules.ValidateName(name);
            }
        }

        if (heartbeat.SubscribedTopicRegex is { Length: > 0 } pattern)
        {
            Regex(pattern);
        }

        if (heartbeat.ServerAssignor is { } assignor && !PartitionAssignors.Names.Contains(assignor))
        {
            throw MetaException.Invalid(ErrorCodes.UnsupportedAssignor,
                $"serverAssignor '{assignor}' is not available; choose one of: {string.Join(", ", PartitionAssignors.Names)}.");
        }

        if (heartbeat.OwnedPartitions is { } owned && owned.Any(t => t?.Partitions is null || t.Partitions.Any(p => p < 0)))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "ownedPartitions: every entry needs a list of partitions, each 0 or greater.");
        }
    }
}
