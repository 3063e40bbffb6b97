using System.Text.Json;
using Microsoft.Extensions.Logging;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Groups;

/// <summary>Leaving, session and revocation deadlines, writes, description and deletion.</summary>
internal sealed partial class ConsumerGroupGrain
{
    /// <summary>Epoch -1 removes the member; -2 (static members) keeps its place and assignment for the session timeout.</summary>
    private async Task<GroupHeartbeatResponse> LeaveAsync(GroupHeartbeatRequest heartbeat)
    {
        var group = state.State;
        if (!group.Members.TryGetValue(heartbeat.MemberId, out var member))
        {
            // Leaving twice is not an error: the first leave may have been answered to a consumer that went away.
            return new GroupHeartbeatResponse(heartbeat.MemberId, heartbeat.MemberEpoch, (int)_options.HeartbeatInterval.TotalMilliseconds, []);
        }

        if (heartbeat.MemberEpoch == -2 && member.InstanceId is not null)
        {
            Touch(member);
            member.LeftWithEpoch ??= member.MemberEpoch;
            _lastHeartbeat[member.MemberId] = TimeProvider.GetTimestamp();
            LogStaticLeft(logger, GroupId, member.InstanceId, member.MemberId);
        }
        else
        {
            Remove(member, "left the group");
        }

        await SaveAsync();
        return new GroupHeartbeatResponse(heartbeat.MemberId, heartbeat.MemberEpoch, (int)_options.HeartbeatInterval.TotalMilliseconds, []);
    }

    private void Remove(GroupMember member, string why)
    {
        var group = state.State;
        group.Members.Remove(member.MemberId);
        _ownership?.Remove(member.MemberId);
        _lastHeartbeat.Remove(member.MemberId);
        _revokeBy.Remove(member.MemberId);
        group.GroupEpoch++;
        LogRemoved(logger, GroupId, member.MemberId, why, group.GroupEpoch);
    }

    /// <summary>Removes members whose session expired and members that did not revoke within the rebalance timeout.</summary>
    private async Task ExpireAsync()
    {
        if (state.State.Members.Count == 0)
        {
            _sessionTimer?.Dispose();
            _sessionTimer = null;
            return;
        }

        var now = TimeProvider.GetTimestamp();
        var session = (long)(_options.SessionTimeout.TotalSeconds * TimeProvider.TimestampFrequency);
        var removed = false;
        foreach (var member in state.State.Members.Values.ToList())
        {
            if (!_lastHeartbeat.TryGetValue(member.MemberId, out var last))
            {
                _lastHeartbeat[member.MemberId] = now;
            }
            else if (now - last > session)
            {
                Remove(member, $"its session expired ({_options.SessionTimeout.TotalSeconds:0.#} s without a heartbeat)");
                removed = true;
            }
            else if (_revokeBy.TryGetValue(member.MemberId, out var deadline) && now > deadline)
            {
                Remove(member, $"it did not revoke partitions within the rebalance timeout ({_options.RebalanceTimeout.TotalSeconds:0.#} s)");
                removed = true;
            }
        }

        if (removed)
        {
            await SaveAsync();
        }
    }

    /// <summary>
    /// Writes the group. A failed write leaves memory ahead of storage, so the activation goes away after this turn
    /// (the persistent state asks for it) and the next call reloads what is committed.
    /// </summary>
    private async Task SaveAsync()
    {
        var (records, logged) = ChangeRecords();
        await state.WriteStateAsync(records);
        _logged = logged;
        _touched.Clear();
        _dirty = false;
        Publish();
    }

    /// <summary>
    /// The metadata log records of the change about to be written, with what each member's record then says: the
    /// group's header when it moved, then one record per member that left or changed (Kafka's group coordinator writes
    /// per-member records too, so a rebalance logs what changed, not the whole group each step). An activation starts
    /// knowing nothing of what the log holds, so its first write logs the header and every member.
    /// </summary>
    private (List<LogRecord> Records, LoggedGroup Logged) ChangeRecords()
    {
        var group = state.State;
        var metadata = image.Current;
        var records = new List<LogRecord>();
        var header = JsonSerializer.SerializeToUtf8Bytes(
            new GroupRecord(GroupId, GroupStateName(), group.GroupEpoch, group.AssignmentEpoch, group.Assignor), MetadataImage.Json);
        if (_logged.Header is not { } loggedHeader || !header.AsSpan().SequenceEqual(loggedHeader))
        {
            records.Add(new LogRecord(RecordTypes.Group, GroupId, header));
        }

        foreach (var gone in _logged.Members.Keys.Where(id => !group.Members.ContainsKey(id)))
        {
            records.Add(new LogRecord(RecordTypes.GroupMember, RecordTypes.GroupMemberKey(GroupId, gone),
                JsonSerializer.SerializeToUtf8Bytes(new GroupMemberRecord(GroupId, gone, null), MetadataImage.Json)));
        }

        // Only members this activation may have changed since its last write are described again (a heartbeat changes
        // its own member; a new target, the members whose target moved), so a rebalance step costs one member, not the group.
        var members = new Dictionary<string, byte[]?>(group.Members.Count, StringComparer.Ordinal);
        foreach (var member in group.Members.Values)
        {
            var known = _logged.Members.TryGetValue(member.MemberId, out var logged) ? logged : null;
            if (known is not null && !_touched.Contains(member.MemberId))
            {
                members[member.MemberId] = known;
                continue;
            }

            var payload = JsonSerializer.SerializeToUtf8Bytes(new GroupMemberRecord(GroupId, member.MemberId, Description(member, metadata)), MetadataImage.Json);
            if (known is null || !payload.AsSpan().SequenceEqual(known))
            {
                records.Add(new LogRecord(RecordTypes.GroupMember, RecordTypes.GroupMemberKey(GroupId, member.MemberId), payload));
            }

            members[member.MemberId] = payload;
        }

        return (records, new LoggedGroup(header, members));
    }

    /// <summary>Marks a member as possibly changed since the last write, for <see cref="ChangeRecords"/>.</summary>
    private void Touch(GroupMember member) => _touched.Add(member.MemberId);

    /// <summary>Deletes the group's state, logging that the group is gone (Kafka's <c>dead</c> state) in the same write.</summary>
    private async Task ClearAsync()
    {
        var group = state.State;
        var deleted = new GroupRecord(GroupId, "dead", group.GroupEpoch, group.AssignmentEpoch, group.Assignor, Deleted: true);
        await state.ClearStateAsync([new LogRecord(RecordTypes.Group, GroupId, JsonSerializer.SerializeToUtf8Bytes(deleted, MetadataImage.Json))]);
        _logged = new LoggedGroup(null, new Dictionary<string, byte[]?>(StringComparer.Ordinal));
    }

    /// <summary>What this activation last wrote to the log for the group: its header and each member's record (null for a
    /// member loaded with the state, whose last record is unknown).</summary>
    private sealed record LoggedGroup(byte[]? Header, Dictionary<string, byte[]?> Members);

    public async Task<GroupDescription> DescribeAsync()
    {
        GroupRules.ValidateGroupId(GroupId);
        var offsets = await OffsetsAsync();
        var group = state.State;
        if (!state.RecordExists && offsets.Count == 0)
        {
            throw MetaException.NotFound(ErrorCodes.GroupIdNotFound, $"Group '{GroupId}' does not exist: no member ever joined it and it has no committed offsets.");
        }

        var metadata = image.Current;
        var (totalLag, withoutLag) = TotalLag(offsets);
        var members = group.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal).Select(m => Description(m, metadata)).ToList();
        return new GroupDescription(GroupId, GroupStateName(), group.GroupEpoch, group.AssignmentEpoch, group.Assignor, members,
            ToGroupOffsets(offsets.Values, metadata), metadata.Offset, totalLag, withoutLag);
    }

    private static GroupMemberDescription Description(GroupMember m, MetadataImage metadata) => new(
        m.MemberId, m.InstanceId, m.RackId, m.ClientId, m.LeftWithEpoch is null ? m.MemberEpoch : -2,
        m.LeftWithEpoch is not null ? "left-temporarily" : MemberStateName(m.State),
        m.SubscribedTopicNames, m.SubscribedTopicRegex,
        Describe(m.Assigned, metadata), Describe(m.PendingRevocation, metadata), Describe(m.Target, metadata));

    public async Task<GroupListing?> ListingAsync()
    {
        var offsets = await OffsetsAsync();
        if (!state.RecordExists && offsets.Count == 0)
        {
            return null;
        }

        var (totalLag, withoutLag) = TotalLag(offsets);
        var group = state.State;
        return new GroupListing(GroupId, GroupStateName(), group.GroupEpoch, group.Members.Count, group.Assignor, offsets.Count, totalLag, withoutLag);
    }

    /// <summary>The lag summed over partitions whose log end is known, and how many are not.</summary>
    private (long Total, int Unknown) TotalLag(GroupOffsets offsets)
    {
        var (total, unknown, _) = offsets.SumLag(logOffsets);
        return (total, unknown);
    }

    /// <summary>
    /// Publishes the group's state line and offsets for listings, and keeps the activation while it holds offsets or
    /// members, so that listings and expiry find it in memory. Called after every committed change of the group's state.
    /// </summary>
    private void Publish()
    {
        PublishOffsets();
        if (_entry is { } entry)
        {
            var group = state.State;
            entry.Header = new GroupHeader(GroupStateName(), group.GroupEpoch, group.Members.Count, group.Assignor, state.RecordExists);
        }
    }

    /// <summary>After a committed change of offsets only (a commit: the hot path), which leaves the state line as it
    /// was: publishes the offsets and keeps the activation while it holds any.</summary>
    private void PublishOffsets()
    {
        KeepAliveWhenIdle = _offsets is { Count: > 0 } || state.State.Members.Count > 0;
        if (_entry is { } entry)
        {
            entry.Offsets = _offsets;
        }
    }

    /// <summary>After a store call that failed: offsets are read again before anything is answered from them.</summary>
    private void ForgetOffsets()
    {
        _offsets = null;
        if (_entry is { } entry)
        {
            entry.Offsets = null;
        }
    }

    /// <summary>
    /// Kafka's offset expiry for consumer groups: an offset whose topic no member consumes is deleted once its last
    /// commit is older than the retention, so an empty group loses every offset that long after its last commit; an
    /// empty group left with no offsets is deleted. Commit times are this group's coordinator's clock for offsets it
    /// committed, the database's for offsets it loaded.
    /// </summary>
    private async Task ExpireOffsetsAsync()
    {
        var offsets = await OffsetsAsync();
        var cutoff = TimeProvider.GetUtcNow() - _options.OffsetsRetention;
        var group = state.State;
        HashSet<Guid> consumed = group.Members.Count == 0 ? [] : [.. ResolveSubscriptions(image.Current).Topics.Keys];
        var expired = offsets.Values.Where(o => o.CommittedAt <= cutoff && !consumed.Contains(o.TopicId)).Select(o => o.Key).ToList();
        if (expired.Count > 0)
        {
            try
            {
                await offsetStore.DeleteAsync(GroupId, expired, CancellationToken.None);
            }
            catch
            {
                ForgetOffsets();
                throw;
            }

            foreach (var key in expired)
            {
                offsets.Remove(key);
            }

            LogOffsetsExpired(logger, GroupId, expired.Count, _options.OffsetsRetention);
        }

        if (group.Members.Count == 0 && offsets.Count == 0)
        {
            if (state.RecordExists)
            {
                await ClearAsync();
                LogGroupExpired(logger, GroupId);
            }

            DeactivateOnIdle();
        }

        Publish();
    }

    public async Task DeleteAsync()
    {
        GroupRules.ValidateGroupId(GroupId);
        var group = state.State;
        if (group.Members.Count > 0)
        {
            throw MetaException.Conflict(ErrorCodes.NonEmptyGroup,
                $"Group '{GroupId}' has {group.Members.Count} member(s); stop its consumers (or wait for their sessions to expire) before deleting it.");
        }

        var offsets = await OffsetsAsync();
        if (offsets.Count == 0 && !state.RecordExists)
        {
            throw MetaException.NotFound(ErrorCodes.GroupIdNotFound, $"Group '{GroupId}' does not exist.");
        }

        await DeleteOffsetsCoreAsync(null);
        if (state.RecordExists)
        {
            await ClearAsync();
        }

        Publish();

        LogDeleted(logger, GroupId);
    }

    /// <summary>Kafka's consumer group states.</summary>
    private string GroupStateName()
    {
        var group = state.State;
        if (group.Members.Count == 0)
        {
            return "empty";
        }

        if (group.AssignmentEpoch < group.GroupEpoch)
        {
            return "assigning";
        }

        return group.Members.Values.All(m => m.MemberEpoch == group.AssignmentEpoch && m.State == MemberState.Stable) ? "stable" : "reconciling";
    }

    private static string MemberStateName(MemberState memberState) => memberState switch
    {
        MemberState.Stable => "stable",
        MemberState.UnrevokedPartitions => "unrevoked-partitions",
        _ => "unreleased-partitions",
    };

    [LoggerMessage(2500, LogLevel.Information, "Group {GroupId}: member {MemberId} joined; group epoch {Epoch}")]
    private static partial void LogJoined(ILogger logger, string groupId, string memberId, int epoch);

    [LoggerMessage(2501, LogLevel.Information, "Group {GroupId}: member {MemberId} removed because {Why}; group epoch {Epoch}")]
    private static partial void LogRemoved(ILogger logger, string groupId, string memberId, string why, int epoch);

    [LoggerMessage(2502, LogLevel.Information, "Group {GroupId}: static member {InstanceId} left for a moment (member {MemberId}); its assignment is kept for the session timeout")]
    private static partial void LogStaticLeft(ILogger logger, string groupId, string instanceId, string memberId);

    [LoggerMessage(2503, LogLevel.Information, "Group {GroupId}: static member {InstanceId} returned as member {MemberId} and keeps its assignment")]
    private static partial void LogStaticReturned(ILogger logger, string groupId, string instanceId, string memberId);

    [LoggerMessage(2504, LogLevel.Information, "Group {GroupId}: target assignment at epoch {Epoch} by the {Assignor} assignor: {Members} members, {Partitions} partitions")]
    private static partial void LogTargetComputed(ILogger logger, string groupId, int epoch, string assignor, int members, int partitions);

    [LoggerMessage(2505, LogLevel.Information, "Group {GroupId} deleted with its offsets")]
    private static partial void LogDeleted(ILogger logger, string groupId);

    [LoggerMessage(2506, LogLevel.Information, "Group {GroupId}: {Count} offset(s) expired (no member consumes their topics and their last commit is older than {Retention})")]
    private static partial void LogOffsetsExpired(ILogger logger, string groupId, int count, TimeSpan retention);

    [LoggerMessage(2507, LogLevel.Information, "Group {GroupId} expired: it has no members and no offsets left")]
    private static partial void LogGroupExpired(ILogger logger, string groupId);
}
