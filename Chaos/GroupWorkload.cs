using System.Collections.Concurrent;
using OrleansMeta.Client;
using OrleansMeta.Contracts;

namespace OrleansMeta.Chaos;

/// <summary>
/// Consumer group clients: members of two groups (dynamic members, and static members that leave for a moment and
/// return) that join, heartbeat on the interval the group asks for, commit the offsets of what they own with their
/// member epoch, and now and then leave; and a standalone committer (no member id, epoch -1) of a group without
/// members. Every partition's offsets come from one counter, so each value is sent once and values grow in the order
/// commits are sent (what <see cref="GroupChecker"/> relies on).
/// </summary>
/// <remarks>Its client should make one attempt per call, so that a refusal is definite and a lost answer is an
/// unknown outcome, and a member's calls never overlap.</remarks>
internal sealed class GroupWorkload(IMetaClient client, History history, ChaosOptions options, Func<CancellationToken, bool> enough)
{
    private readonly ConcurrentDictionary<(string Group, string Topic, int Partition), long> _offsets = new();
    private readonly ConcurrentDictionary<string, byte> _committed = new(StringComparer.Ordinal);

    private string TopicA => $"grp-{options.Seed}-a";

    private string TopicB => $"grp-{options.Seed}-b";

    /// <summary>Groups that had a commit sent: the ones whose offsets are read at the end.</summary>
    public IReadOnlyCollection<string> CommittedGroups => [.. _committed.Keys.Order(StringComparer.Ordinal)];

    public async Task RunAsync(CancellationToken stop)
    {
        if (!await CreateTopicAsync(TopicA, 6, stop) || !await CreateTopicAsync(TopicB, 4, stop))
        {
            return;
        }

        var dynamicGroup = $"cg-{options.Seed}-dynamic";
        var staticGroup = $"cg-{options.Seed}-static";
        await Task.WhenAll([
            .. Enumerable.Range(0, 3).Select(i => Guard(() => MemberAsync(dynamicGroup, $"d{i}", null, [TopicA, TopicB], null, new Random(options.Seed * 101 + i), stop))),
            .. Enumerable.Range(0, 2).Select(i => Guard(() => MemberAsync(staticGroup, $"s{i}", $"instance-{i}", [TopicA], "range", new Random(options.Seed * 103 + i), stop))),
            Guard(() => MemberAsync(staticGroup, "d", null, [TopicA], "range", new Random(options.Seed * 107), stop)),
            Guard(() => StandaloneAsync($"cg-{options.Seed}-standalone", new Random(options.Seed * 109), stop)),
        ]);
    }

    /// <summary>Reads every committed group's offsets, each until it answers or <paramref name="timeout"/> passes (null then).</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlyDictionary<(string Topic, int Partition), long>?>> ReadOffsetsAsync(
        IMetaClient reader, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<(string Topic, int Partition), long>?>(StringComparer.Ordinal);
        var deadline = DateTime.UtcNow + timeout;
        foreach (var group in CommittedGroups)
        {
            while (true)
            {
                try
                {
                    var answer = await reader.FetchOffsetsAsync(group, null, cancellationToken);
                    result[group] = answer.Offsets.ToDictionary(o => (o.Topic, o.Partition), o => o.Offset);
                    break;
                }
                catch (MetaApiException e) when (e.Code == ErrorCodes.GroupIdNotFound)
                {
                    result[group] = new Dictionary<(string Topic, int Partition), long>();
                    break;
                }
                catch (MetaApiException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(500, cancellationToken);
                }
                catch (MetaApiException e)
                {
                    options.Log($"offsets of {group} unreadable: {e.Message}");
                    result[group] = null;
                    break;
                }
            }
        }

        return result;
    }

    private static async Task Guard(Func<Task> run)
    {
        try
        {
            await run();
        }
        catch (OperationCanceledException)
        {
            // The run's time is up.
        }
    }

    private async Task<bool> CreateTopicAsync(string topic, int partitions, CancellationToken stop)
    {
        while (!enough(stop))
        {
            var (answer, record) = await history.RecordOutcomeAsync("groups", OperationKind.CreateTopic, $"{topic} {partitions}x2",
                () => client.CreateTopicAsync(new CreateTopicRequest(topic, partitions, 2), stop),
                (a, o) => o with { MetadataOffset = a.MetadataOffset, Effects = [new TopicEffect(topic, a.Topic.TopicId, TopicEffect.Created)] });
            if (answer is not null || record.Error == ErrorCodes.TopicAlreadyExists)
            {
                return true; // Already there: an earlier attempt whose answer was lost created it.
            }

            await Task.Delay(500, stop); // Not enough brokers registered yet, or no silo answered.
        }

        return false;
    }

    private async Task MemberAsync(string group, string slot, string? instance, IReadOnlyList<string> topics, string? assignor, Random random, CancellationToken stop)
    {
        var name = $"{group}/{slot}";
        var memberId = NewMemberId(slot);
        var epoch = 0;
        IReadOnlyList<GroupPartition> owned = [];
        while (!enough(stop))
        {
            var join = epoch == 0;
            var request = join
                ? new GroupHeartbeatRequest(memberId, 0, instance, ClientId: name, SubscribedTopicNames: topics, ServerAssignor: assignor)
                : new GroupHeartbeatRequest(memberId, epoch, instance, OwnedPartitions: [.. owned.GroupBy(p => (p.TopicId, p.Topic)).Select(t => new GroupTopicPartitions(t.Key.TopicId, t.Key.Topic, [.. t.Select(p => p.Partition).Order()]))]);
            var (answer, record) = await HeartbeatAsync(name, group, request, join ? OperationKind.GroupJoin : OperationKind.GroupHeartbeat, owned, stop);
            if (answer is not null)
            {
                epoch = answer.MemberEpoch;
                owned = Flatten(answer.Assignment);
            }
            else if (record.Error is ErrorCodes.UnknownMemberId or ErrorCodes.FencedMemberEpoch)
            {
                // Removed or fenced: everything is lost; join again (a known member id with epoch 0 starts over).
                epoch = 0;
                owned = [];
            }

            // A lost answer keeps epoch and partitions: the next heartbeat says what this member owns.
            if (epoch > 0 && owned.Count > 0 && random.NextDouble() < 0.6)
            {
                await CommitAsync(name, group, memberId, epoch, [.. owned.Select(p => (p.Topic, p.Partition))], stop);
            }

            if (epoch > 0 && random.NextDouble() < 0.02)
            {
                // Leave: a dynamic member for good (its process ends; a new one joins later with a new member id), a
                // static one for a moment (a restart: it comes back within the session with its instance id).
                await HeartbeatAsync(name, group, new GroupHeartbeatRequest(memberId, instance is null ? -1 : -2, instance), OperationKind.GroupLeave, owned, stop);
                epoch = 0;
                owned = [];
                memberId = NewMemberId(slot);
                await Task.Delay(random.Next(200, 1500), stop);
                continue;
            }

            var interval = answer?.HeartbeatIntervalMs ?? 300;
            await Task.Delay(Math.Clamp(interval, 100, 1000), stop);
        }
    }

    private static string NewMemberId(string slot) => $"{slot}-{Guid.NewGuid():N}"[..20];

    private static IReadOnlyList<GroupPartition> Flatten(IReadOnlyList<GroupTopicPartitions> assignment)
        => [.. assignment.SelectMany(t => t.Partitions.Select(p => new GroupPartition(t.TopicId, t.Topic, p)))];

    private Task<(GroupHeartbeatResponse? Answer, Operation Record)> HeartbeatAsync(
        string name, string group, GroupHeartbeatRequest request, OperationKind kind, IReadOnlyList<GroupPartition> owned, CancellationToken stop)
        => history.RecordOutcomeAsync(name, kind, $"{group} {request.MemberId} epoch {request.MemberEpoch}",
            () => client.SendGroupHeartbeatAsync(group, request, stop),
            (a, o) => o with
            {
                Input = $"{o.Input} -> epoch {a.MemberEpoch} [{string.Join(",", Flatten(a.Assignment))}]",
                Heartbeat = o.Heartbeat! with { AnsweredEpoch = a.MemberEpoch, Assigned = Flatten(a.Assignment) },
            },
            o => o with { Heartbeat = new HeartbeatCall(group, request.MemberId, request.MemberEpoch, request.InstanceId) { Owned = request.OwnedPartitions is null ? null : owned } });

    private async Task CommitAsync(string name, string group, string? memberId, int epoch, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken stop)
    {
        _committed.TryAdd(group, 0);
        var offsets = partitions.Select(p => new CommittedOffset(p.Topic, p.Partition, _offsets.AddOrUpdate((group, p.Topic, p.Partition), 1, (_, v) => v + 1))).ToList();
        await history.RecordAsync(name, OperationKind.CommitOffsets, $"{group} {memberId ?? "-"} epoch {epoch} {string.Join(",", offsets.Select(o => $"{o.Topic}/{o.Partition}={o.Offset}"))}",
            () => client.CommitOffsetsAsync(group, new CommitOffsetsRequest(memberId, epoch, [.. offsets.Select(o => new PartitionOffset(o.Topic, o.Partition, o.Offset))]), stop),
            request: o => o with { Commit = new CommitCall(group, memberId, epoch, offsets) });
    }

    /// <summary>A consumer outside group management (Kafka's assign()) committing to a group that has no members.</summary>
    private async Task StandaloneAsync(string group, Random random, CancellationToken stop)
    {
        var name = $"{group}/assign";
        while (!enough(stop))
        {
            var partitions = Enumerable.Range(0, 6).Where(_ => random.Next(3) == 0).Select(p => (TopicA, p)).ToList();
            if (partitions.Count > 0)
            {
                await CommitAsync(name, group, null, -1, partitions, stop);
            }

            await Task.Delay(random.Next(100, 300), stop);
        }
    }
}
