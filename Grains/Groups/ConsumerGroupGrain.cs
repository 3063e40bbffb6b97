using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// One consumer group (KIP-848). A heartbeat validates the member and its epoch, takes its subscription, bumps the group
/// epoch when membership, subscriptions or the subscribed topics' partitions changed, recomputes the target assignment
/// when the group epoch moved past it, and moves the member one reconciliation step towards its target: a partition is
/// revoked from one member, and that revocation acknowledged, before another member gets it.
/// </summary>
/// <remarks>
/// Sessions (the time of each member's last heartbeat) live in memory only, as broker sessions do, so the grain keeps
/// its truth in memory: a new activation waits out a dead silo's lease and gives every member a full session.
/// Subscribed topics are read from this silo's metadata image at each heartbeat, so a topic created, deleted or grown
/// changes the target at the next heartbeat of any member, with no polling of the database.
/// </remarks>
[KeepsTruthInMemory]
internal sealed partial class ConsumerGroupGrain(
    [PersistentState("group")] IPersistentState<GroupState> state,
    IOffsetStore offsetStore,
    LogOffsetsTable logOffsets,
    GroupDirectory directory,
    MetadataImageService image,
    IMetadataLog log,
    IOptions<GroupOptions> options,
    IOptions<ControllerOptions> controllerOptions,
    ILogger<ConsumerGroupGrain> logger) : Grain, IConsumerGroupGrain
{
    private readonly GroupOptions _options = options.Value;
    private readonly TimeSpan _imageWait = controllerOptions.Value.ImageWaitTimeout;
    private readonly Dictionary<string, long> _lastHeartbeat = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _revokeBy = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Regex> _regexes = new(StringComparer.Ordinal);
    private IDisposable? _sessionTimer;
    private IDisposable? _retentionTimer;
    private GroupEntry? _entry;
    private LoggedGroup _logged = new(null, new Dictionary<string, byte[]?>(StringComparer.Ordinal));
    private readonly HashSet<string> _touched = new(StringComparer.Ordinal);
    private bool _dirty;

    private string GroupId => Key;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Every member gets a full session from this activation on; the old owner's clocks are gone with it.
        var now = TimeProvider.GetTimestamp();
        foreach (var member in state.State.Members.Keys)
        {
            _lastHeartbeat[member] = now;
            _logged.Members[member] = null;
        }

        // Offsets are loaded now, not on first use: a group that has any stays active, so that listings and offset
        // expiry find every group in some silo's memory.
        await OffsetsAsync();
        _entry = directory.Add(GroupId);
        Publish();
        if (state.State.Members.Count > 0)
        {
            StartSessionChecks();
        }

        _retentionTimer = RegisterGrainTimer(_ => ExpireOffsetsAsync(), _options.OffsetsRetentionCheckInterval, _options.OffsetsRetentionCheckInterval);
    }

    /// <summary>
    /// Session checks run only while the group has members: a group that only holds offsets (most groups of a large
    /// cluster, and every group of admin tools and assign() consumers) costs no turn a second. The check stops itself
    /// when the last member is gone; a join starts it again.
    /// </summary>
    private void StartSessionChecks()
        => _sessionTimer ??= RegisterGrainTimer(_ => ExpireAsync(), _options.SessionCheckInterval, _options.SessionCheckInterval);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _sessionTimer?.Dispose();
        _retentionTimer?.Dispose();
        if (_entry is { } entry)
        {
            directory.Remove(entry);
        }

        return Task.CompletedTask;
    }

    public async Task<GroupHeartbeatResponse> HeartbeatAsync(GroupHeartbeatRequest heartbeat)
    {
        ValidateHeartbeat(heartbeat);
        var metadata = image.Current;
        if (heartbeat.MemberEpoch is -1 or -2)
        {
            return await LeaveAsync(heartbeat);
        }

        var group = state.State;
        _dirty = false;
        var epochBefore = group.GroupEpoch;
        var member = heartbeat.MemberEpoch == 0 ? Join(heartbeat) : Existing(heartbeat);
        Touch(member);
        UpdateSubscription(member, heartbeat);

        var subscribed = ResolveSubscriptions(metadata);
        var topicPartitions = subscribed.Topics;
        if (!SameTopics(topicPartitions, group.SubscribedTopics))
        {
            group.SubscribedTopics = topicPartitions;
            group.GroupEpoch++;
        }

        if (group.GroupEpoch > group.AssignmentEpoch)
        {
            ComputeTarget(metadata, subscribed.PerMember);
        }

        var ownership = Ownership;
        var current = member.ToAssignment();
        var next = Reconciliation.Next(
            current,
            group.AssignmentEpoch,
            member.Target.ToHashSet(),
            heartbeat.OwnedPartitions is { } owned ? Flatten(owned, metadata) : null,
            ownership.OwnedByOtherThan(member.MemberId));
        if (next.MemberEpoch != current.MemberEpoch || next.State != current.State
            || !next.Assigned.SetEquals(current.Assigned) || !next.PendingRevocation.SetEquals(current.PendingRevocation))
        {
            // The index refuses (and changes nothing) if the step would give a partition a second owner: the last line
            // of defence, since reconciliation never does that. Nothing is written then.
            ownership.Set(member.MemberId, next);
            member.Apply(next);
            _dirty = true;
        }

        TrackRevocation(member);

        if (_dirty || group.GroupEpoch != epochBefore)
        {
            await SaveAsync();
        }

        _lastHeartbeat[member.MemberId] = TimeProvider.GetTimestamp();
        return new GroupHeartbeatResponse(member.MemberId, member.MemberEpoch, (int)_options.HeartbeatInterval.TotalMilliseconds,
            Describe(member.Assigned, metadata));
    }

    /// <summary>A member with epoch 0: new, a static member coming back, or a member that lost its state rejoining.</summary>
    private GroupMember Join(GroupHeartbeatRequest heartbeat)
    {
        var group = state.State;
        if (heartbeat.SubscribedTopicNames is null && heartbeat.SubscribedTopicRegex is null)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                "A joining member (memberEpoch 0) must send its subscription: subscribedTopicNames or subscribedTopicRegex.");
        }

        if (heartbeat.InstanceId is { } instanceId
            && group.Members.Values.FirstOrDefault(m => m.InstanceId == instanceId) is { } holder)
        {
            if (holder.MemberId == heartbeat.MemberId)
            {
                return Rejoin(holder);
            }

            if (holder.LeftWithEpoch is not { } epoch)
            {
                throw MetaException.Conflict(ErrorCodes.UnreleasedInstanceId,
                    $"Static member '{instanceId}' of group '{GroupId}' is held by member {holder.MemberId}, which has not left. Stop the other " +
                    "consumer with this group.instance.id, or wait for its session to expire.");
            }

            // The same static member restarted within its session: it takes its old place, assignment and epoch.
            group.Members.Remove(holder.MemberId);
            _lastHeartbeat.Remove(holder.MemberId);
            holder.MemberId = heartbeat.MemberId;
            _ownership = null;
            _resolvedTopics = null;
            holder.MemberEpoch = epoch;
            holder.LeftWithEpoch = null;
            group.Members[holder.MemberId] = holder;
            StartSessionChecks();
            _dirty = true;
            LogStaticReturned(logger, GroupId, instanceId, holder.MemberId);
            return holder;
        }

        if (group.Members.TryGetValue(heartbeat.MemberId, out var existing))
        {
            return Rejoin(existing);
        }

        if (group.Members.Count >= _options.MaxSize)
        {
            throw MetaException.Conflict(ErrorCodes.GroupMaxSizeReached,
                $"Group '{GroupId}' has {group.Members.Count} members, the most it may have (Meta:Groups:MaxSize). Stop a member or raise the limit.");
        }

        var member = new GroupMember { MemberId = heartbeat.MemberId, InstanceId = heartbeat.InstanceId };
        group.Members[member.MemberId] = member;
        StartSessionChecks();
        group.GroupEpoch++;
        LogJoined(logger, GroupId, member.MemberId, group.GroupEpoch);
        return member;
    }

    /// <summary>A known member sent epoch 0: it lost its assignment (a restart, or it was fenced); it starts over.</summary>
    private GroupMember Rejoin(GroupMember member)
    {
        _ownership?.Remove(member.MemberId);
        member.MemberEpoch = 0;
        member.PreviousMemberEpoch = 0;
        member.State = MemberState.Stable;
        member.Assigned = [];
        member.PendingRevocation = [];
        member.LeftWithEpoch = null;
        state.State.GroupEpoch++;
        return member;
    }

    private GroupMember Existing(GroupHeartbeatRequest heartbeat)
    {
        if (!state.State.Members.TryGetValue(heartbeat.MemberId, out var member) || member.LeftWithEpoch is not null)
        {
            throw MetaException.NotFound(ErrorCodes.UnknownMemberId,
                $"Member {heartbeat.MemberId} is not a member of group '{GroupId}' (it left, or its session expired). Join again with memberEpoch 0.");
        }

        if (heartbeat.MemberEpoch == member.MemberEpoch)
        {
            return member;
        }

        // The answer to the previous heartbeat was lost: the member may repeat it, owning nothing it was not given.
        if (heartbeat.MemberEpoch == member.PreviousMemberEpoch && heartbeat.OwnedPartitions is { } owned
            && Flatten(owned, image.Current).All(member.Assigned.Contains))
        {
            return member;
        }

        throw MetaException.Conflict(ErrorCodes.FencedMemberEpoch,
            $"Member {member.MemberId} of group '{GroupId}' sent epoch {heartbeat.MemberEpoch}, but its epoch is {member.MemberEpoch}. " +
            "It was fenced: give up every partition and join again with memberEpoch 0.");
    }

    private void UpdateSubscription(GroupMember member, GroupHeartbeatRequest heartbeat)
    {
        var changed = false;
        if (heartbeat.SubscribedTopicNames is { } names)
        {
            var sorted = names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            changed |= !sorted.SequenceEqual(member.SubscribedTopicNames);
            member.SubscribedTopicNames = sorted;
        }

        if (heartbeat.SubscribedTopicRegex is { } regex)
        {
            var value = regex.Length == 0 ? null : regex;
            changed |= value != member.SubscribedTopicRegex;
            member.SubscribedTopicRegex = value;
        }

        if (heartbeat.ServerAssignor is { } assignor)
        {
            changed |= assignor != member.ServerAssignor;
            member.ServerAssignor = assignor;
        }

        // Rack and client id change no assignment, but they are part of the persisted (and logged) member.
        if ((heartbeat.RackId is { } rack && rack != member.RackId) || (heartbeat.ClientId is { } client && client != member.ClientId))
        {
            member.RackId = heartbeat.RackId ?? member.RackId;
            member.ClientId = heartbeat.ClientId ?? member.ClientId;
            _dirty = true;
        }

        if (changed)
        {
            state.State.GroupEpoch++;
        }
    }
}
