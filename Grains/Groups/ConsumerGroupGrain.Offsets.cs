using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// Committed offsets: fenced by the member epoch, stored one row per partition, answered from memory. A store call that
/// failed may still have committed, so memory is dropped and read again before the next answer.
/// </summary>
internal sealed partial class ConsumerGroupGrain
{
    private const int MaxMetadataLength = 4096;
    private GroupOffsets? _offsets;

    public async Task CommitAsync(CommitOffsetsRequest commit)
    {
        GroupRules.ValidateGroupId(GroupId);
        if (commit.Offsets is not { Count: > 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "offsets must list at least one partition.");
        }

        ValidateCommitter(commit);
        var offsets = await OffsetsAsync();
        var rows = await ResolveAsync(commit.Offsets);
        await StoreAsync(rows);
        var now = TimeProvider.GetUtcNow();
        foreach (var row in rows)
        {
            offsets.Set(new CommittedOffset(row.TopicId, row.Topic, row.Partition, row.Offset, row.LeaderEpoch, row.Metadata, now));
        }

        PublishOffsets();
    }

    public async Task<IReadOnlyList<GroupOffset>> FetchAsync(IReadOnlyList<string>? topics)
    {
        GroupRules.ValidateGroupId(GroupId);
        var offsets = await OffsetsAsync();
        var metadata = image.Current;
        IEnumerable<CommittedOffset> selected = offsets.Values;
        if (topics is not null)
        {
            foreach (var topic in topics)
            {
                TopicRules.ValidateName(topic, "query parameter 'topic'");
            }

            var names = topics.ToHashSet(StringComparer.Ordinal);
            selected = selected.Where(o => names.Contains(NameOf(o, metadata)));
        }

        return ToGroupOffsets(selected, metadata);
    }

    public async Task<int> DeleteOffsetsAsync(IReadOnlyList<string>? topics)
    {
        GroupRules.ValidateGroupId(GroupId);
        var metadata = image.Current;
        if (topics is not null)
        {
            foreach (var topic in topics)
            {
                TopicRules.ValidateName(topic, "query parameter 'topic'");
            }

            // Kafka's rule: a group may not lose the offsets of a topic its members still consume.
            var subscribed = ResolveSubscriptions(metadata).Topics.Keys.Select(id => metadata.TopicNames.GetValueOrDefault(id)).ToHashSet(StringComparer.Ordinal);
            if (state.State.Members.Count > 0 && topics.FirstOrDefault(subscribed.Contains) is { } consumed)
            {
                throw MetaException.Conflict(ErrorCodes.GroupSubscribedToTopic,
                    $"Group '{GroupId}' has members subscribed to topic '{consumed}', so its offsets cannot be deleted; stop the consumers first.");
            }
        }
        else if (state.State.Members.Count > 0)
        {
            throw MetaException.Conflict(ErrorCodes.NonEmptyGroup,
                $"Group '{GroupId}' has {state.State.Members.Count} member(s); name the topics whose offsets to delete, or stop its consumers first.");
        }

        return await DeleteOffsetsCoreAsync(topics);
    }

    public async Task<IReadOnlyList<GroupOffset>> ResetAsync(ResetOffsetsRequest reset)
    {
        GroupRules.ValidateGroupId(GroupId);
        var explicitOffsets = reset.Offsets is { Count: > 0 };
        if (reset.To is null && !explicitOffsets)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                "Give either offsets (one explicit offset per partition) or to ('earliest' or 'latest') with topics.");
        }

        if (reset.To is not null && (explicitOffsets || reset.Topics is not { Count: > 0 }))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, explicitOffsets
                ? "Give either offsets or to, not both."
                : $"to '{reset.To}' needs topics: the topics whose every partition to reset.");
        }

        if (state.State.Members.Count > 0)
        {
            throw MetaException.Conflict(ErrorCodes.NonEmptyGroup,
                $"Group '{GroupId}' has {state.State.Members.Count} member(s); offsets are reset only while a group is empty. Stop its consumers first.");
        }

        var rows = await ResolveAsync(reset.To is { } to ? await ReportedOffsetsAsync(to, reset.Topics!) : reset.Offsets!);
        var metadata = image.Current;
        if (!reset.DryRun)
        {
            var offsets = await OffsetsAsync();
            await StoreAsync(rows);
            var now = TimeProvider.GetUtcNow();
            foreach (var row in rows)
            {
                offsets.Set(new CommittedOffset(row.TopicId, row.Topic, row.Partition, row.Offset, row.LeaderEpoch, row.Metadata, now));
            }

            PublishOffsets();
        }

        return ToGroupOffsets(rows.Select(r => new CommittedOffset(r.TopicId, r.Topic, r.Partition, r.Offset, r.LeaderEpoch, r.Metadata, TimeProvider.GetUtcNow())), metadata);
    }

    /// <summary>Every partition of <paramref name="topics"/> at its log start (<c>earliest</c>) or log end
    /// (<c>latest</c>) as its leader last reported it; refused if any partition has no report yet.</summary>
    private async Task<List<PartitionOffset>> ReportedOffsetsAsync(string to, IReadOnlyList<string> topics)
    {
        if (to is not ("earliest" or "latest"))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"to must be 'earliest' or 'latest'; got '{to}'. For explicit offsets use offsets instead.");
        }

        var metadata = image.Current;
        if (topics.Any(t => t is null || !metadata.Topics.ContainsKey(t)))
        {
            metadata = await image.WaitForAsync(await log.GetHeadAsync(CancellationToken.None), _imageWait);
        }

        var offsets = new List<PartitionOffset>();
        for (var i = 0; i < topics.Count; i++)
        {
            var name = topics[i];
            TopicRules.ValidateName(name, $"topics[{i}]");
            if (!metadata.Topics.TryGetValue(name, out var topic))
            {
                throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"topics[{i}]: topic '{name}' does not exist.");
            }

            foreach (var partition in topic.Partitions)
            {
                if (!logOffsets.TryGet(topic.Topic.TopicId, partition.Partition, out var reported))
                {
                    throw MetaException.Conflict(ErrorCodes.OffsetNotAvailable,
                        $"No leader has reported the log offsets of '{name}' partition {partition.Partition} yet, so '{to}' is not known. Brokers report " +
                        "them every few seconds (PUT /v1/brokers/{id}/log-offsets); retry shortly, or reset to explicit offsets.");
                }

                offsets.Add(new PartitionOffset(name, partition.Partition, to == "earliest" ? reported.LogStartOffset : reported.LogEndOffset));
            }
        }

        return offsets;
    }

    /// <summary>Kafka's rules for who may commit: members with their current epoch; anyone else only while the group is empty.</summary>
    private void ValidateCommitter(CommitOffsetsRequest commit)
    {
        var members = state.State.Members;
        if (string.IsNullOrEmpty(commit.MemberId) && commit.MemberEpoch < 0)
        {
            if (members.Count > 0)
            {
                throw MetaException.NotFound(ErrorCodes.UnknownMemberId,
                    $"Group '{GroupId}' has {members.Count} member(s), so commits must come from a member with its memberId and memberEpoch.");
            }

            return;
        }

        if (commit.MemberId is null || !members.TryGetValue(commit.MemberId, out var member) || member.LeftWithEpoch is not null)
        {
            throw MetaException.NotFound(ErrorCodes.UnknownMemberId,
                $"Member '{commit.MemberId}' is not a member of group '{GroupId}'; join the group (or commit with memberEpoch -1 and no memberId while it is empty).");
        }

        if (commit.MemberEpoch > member.MemberEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.FencedMemberEpoch,
                $"Member {member.MemberId} committed with epoch {commit.MemberEpoch}, newer than its epoch {member.MemberEpoch}; it was fenced. Join again.");
        }

        if (commit.MemberEpoch < member.MemberEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.StaleMemberEpoch,
                $"Member {member.MemberId} committed with epoch {commit.MemberEpoch}, but its epoch is {member.MemberEpoch}; heartbeat for the new assignment, then commit again.");
        }
    }

    /// <summary>
    /// Turns names into topic ids on an image that holds every topic the log has (a topic created a moment ago is
    /// waited for, not refused), checking partitions and values. A valid commit builds nothing but its rows: messages,
    /// with the field's JSON path, are made only for the entry that is refused, and a topic found in the image needs
    /// no name check (the image holds only valid names).
    /// </summary>
    private async Task<List<OffsetCommit>> ResolveAsync(IReadOnlyList<PartitionOffset> offsets)
    {
        var metadata = image.Current;
        var unknownTopic = false;
        for (var i = 0; i < offsets.Count; i++)
        {
            if (offsets[i] is not { } o)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"offsets[{i}] is null; give a topic, a partition and an offset.");
            }

            unknownTopic |= o.Topic is null || !metadata.Topics.ContainsKey(o.Topic);
        }

        if (unknownTopic)
        {
            metadata = await image.WaitForAsync(await log.GetHeadAsync(CancellationToken.None), _imageWait);
        }

        var rows = new List<OffsetCommit>(offsets.Count);
        for (var i = 0; i < offsets.Count; i++)
        {
            var o = offsets[i];
            if (o.Topic is null || !metadata.Topics.TryGetValue(o.Topic, out var topic))
            {
                TopicRules.ValidateName(o.Topic, $"offsets[{i}].topic");
                throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"offsets[{i}]: topic '{o.Topic}' does not exist.");
            }

            if (o.Partition < 0 || o.Partition >= topic.Partitions.Length)
            {
                throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition,
                    $"offsets[{i}]: topic '{o.Topic}' has partitions 0 to {topic.Partitions.Length - 1}; there is no partition {o.Partition}.");
            }

            if (o.Offset < 0)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"offsets[{i}].offset must be 0 or greater; got {o.Offset}.");
            }

            if (o.LeaderEpoch < -1)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"offsets[{i}].leaderEpoch must be -1 (unknown) or greater; got {o.LeaderEpoch}.");
            }

            if (o.Metadata is { Length: > MaxMetadataLength })
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"offsets[{i}].metadata is {o.Metadata.Length} characters long; at most {MaxMetadataLength} are allowed.");
            }

            rows.Add(new OffsetCommit(topic.Topic.TopicId, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata));
        }

        return rows;
    }

    private async Task StoreAsync(List<OffsetCommit> rows)
    {
        try
        {
            await offsetStore.CommitAsync(GroupId, rows, CancellationToken.None);
        }
        catch
        {
            // Refused or unknown: what storage holds is read again before this grain answers from memory.
            ForgetOffsets();
            throw;
        }
    }

    private async Task<int> DeleteOffsetsCoreAsync(IReadOnlyList<string>? topics)
    {
        var offsets = await OffsetsAsync();
        List<OffsetKey>? keys = null;
        if (topics is not null)
        {
            var metadata = image.Current;
            var names = topics.ToHashSet(StringComparer.Ordinal);
            keys = [.. offsets.Values.Where(o => names.Contains(NameOf(o, metadata))).Select(o => o.Key)];
            if (keys.Count == 0)
            {
                return 0;
            }
        }

        try
        {
            var deleted = await offsetStore.DeleteAsync(GroupId, keys, CancellationToken.None);
            foreach (var key in keys ?? [.. offsets.Keys])
            {
                offsets.Remove(key);
            }

            PublishOffsets();
            return deleted;
        }
        catch
        {
            ForgetOffsets();
            throw;
        }
    }

    private async Task<GroupOffsets> OffsetsAsync()
    {
        if (_offsets is null)
        {
            _offsets = GroupOffsets.From(await offsetStore.ReadAsync(GroupId, CancellationToken.None));
            PublishOffsets();
        }

        return _offsets;
    }

    /// <summary>A topic's current name, or the name it had when committed if it was deleted since.</summary>
    private static string NameOf(CommittedOffset offset, MetadataImage metadata)
        => metadata.TopicNames.TryGetValue(offset.TopicId, out var name) ? name : offset.Topic;

    private List<GroupOffset> ToGroupOffsets(IEnumerable<CommittedOffset> offsets, MetadataImage metadata)
        => [.. offsets.Select(o => logOffsets.TryGet(o.TopicId, o.Partition, out var log)
                ? new GroupOffset(NameOf(o, metadata), o.TopicId, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, o.CommittedAt, log.LogEndOffset, Lag(o.Offset, log))
                : new GroupOffset(NameOf(o, metadata), o.TopicId, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, o.CommittedAt))
            .OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition)];

    /// <summary>Records not yet consumed; never below 0 (a log end reported before the commit may be behind it).</summary>
    private static long Lag(long committed, LogOffsets log) => Math.Max(0, log.LogEndOffset - committed);
}
