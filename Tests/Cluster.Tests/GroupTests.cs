using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Consumer groups (KIP-848) on a three-silo cluster with PostgreSQL.</summary>
public sealed class GroupTests
{
    private static readonly Dictionary<string, string> FastGroups = GroupSettings.Fast(TimeSpan.FromSeconds(2));

    [Fact]
    public async Task A_group_checks_member_sessions_only_while_it_has_members()
    {
        // A group that only holds offsets (admin tools, assign() consumers, most groups of a large cluster) stays
        // active for listings; it should not cost a turn every session-check interval.
        await using var setup = await MetaSetup.StartAsync("groups-session-checks", settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("audit", 2, 3));
        await setup.Client.CommitOffsetsAsync("idle", new CommitOffsetsRequest(null, -1, [new PartitionOffset("audit", 0, 5)]));
        Assert.Equal(1, TimersOf(setup, "idle"));

        var member = Guid.NewGuid().ToString();
        await setup.Client.SendGroupHeartbeatAsync("idle", new GroupHeartbeatRequest(member, 0, SubscribedTopicNames: ["audit"]));
        Assert.Equal(2, TimersOf(setup, "idle"));

        await setup.Client.SendGroupHeartbeatAsync("idle", new GroupHeartbeatRequest(member, -1));
        await Eventually.Until(() => TimersOf(setup, "idle") == 1, "the session checks stop once the last member has left", TimeSpan.FromSeconds(10));

        // A member joining again starts them again, and a silent one is still removed.
        var second = Guid.NewGuid().ToString();
        await setup.Client.SendGroupHeartbeatAsync("idle", new GroupHeartbeatRequest(second, 0, SubscribedTopicNames: ["audit"]));
        Assert.Equal(2, TimersOf(setup, "idle"));
        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("idle")).Members.Count == 0 && TimersOf(setup, "idle") == 1,
            "the silent member is removed after its session and the checks stop", TimeSpan.FromSeconds(15));
    }

    private static int TimersOf(MetaSetup setup, string groupId)
        => setup.Silos.Where(s => s.IsRunning).SelectMany(s => s.Services.GetRequiredService<ActivationCatalog>().Activations)
            .Single(a => a.GrainId == new GrainId("group", groupId)).TimerCount;

    [Fact]
    public async Task Three_members_share_twelve_partitions_and_a_silent_one_is_removed_without_a_partition_ever_having_two_owners()
    {
        await using var setup = await MetaSetup.StartAsync("groups-basic", settings: FastGroups);
        var topic = await setup.Client.CreateTopicAsync(new CreateTopicRequest("orders", 12, 3));
        var watch = new OwnershipWatch(topic.Topic.TopicId);
        var consumers = new List<GroupConsumer>();
        for (var i = 0; i < 3; i++)
        {
            consumers.Add(watch.Track(new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "g1", Topics = ["orders"] })));
        }

        using var polling = new CancellationTokenSource();
        var server = new AssignmentHistory();
        var poller = PollAsync(setup.Client, "g1", server, polling.Token);
        foreach (var consumer in consumers)
        {
            await consumer.StartAsync();
        }

        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("g1")).State == "stable" && consumers.All(c => c.Assignment.Count == 4),
            "three members own four partitions each", TimeSpan.FromSeconds(30));
        Assert.Equal(12, consumers.SelectMany(c => c.Assignment).Distinct().Count());

        // One member goes silent (as a crashed process): after its session it is removed and the others take its partitions.
        var silent = consumers[2];
        await silent.AbandonAsync();
        watch.Forget(silent);
        await Eventually.Until(async () =>
        {
            var group = await setup.Client.DescribeGroupAsync("g1");
            return group.State == "stable" && group.Members.Count == 2 && consumers.Take(2).All(c => c.Assignment.Count == 6);
        }, "the two remaining members own six partitions each", TimeSpan.FromSeconds(30));

        await polling.CancelAsync();
        await poller;
        await GroupWatchTests.AssertImagesAgreeAsync(setup, "g1");
        watch.ThrowIfViolated();
        server.ThrowIfViolated();
        Assert.True(server.Observations > 10, $"the server's assignments were observed {server.Observations} times");
        foreach (var consumer in consumers.Take(2))
        {
            await consumer.DisposeAsync();
        }

        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("g1")).State == "empty", "the group is empty after both left", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_static_member_restarted_within_its_session_keeps_its_partitions()
    {
        // A longer session than the other tests': the restart must happen within it even on a loaded machine.
        await using var setup = await MetaSetup.StartAsync("groups-static", settings: new Dictionary<string, string>(FastGroups)
        {
            ["Meta:Groups:SessionTimeout"] = "00:00:15",
        });
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("events", 6, 3));
        GroupConsumer Static(string instance) => new(setup.Client, new GroupConsumerOptions { GroupId = "g2", Topics = ["events"], InstanceId = instance });
        var first = Static("consumer-a");
        var second = Static("consumer-b");
        await first.StartAsync();
        await second.StartAsync();
        await Eventually.Until(async () => (await setup.Client.DescribeGroupAsync("g2")).State == "stable" && first.Assignment.Count == 3 && second.Assignment.Count == 3,
            "two static members own three partitions each", TimeSpan.FromSeconds(30));
        var before = first.Assignment;
        var epochBefore = (await setup.Client.DescribeGroupAsync("g2")).GroupEpoch;

        await first.DisposeAsync(); // a static member leaves with epoch -2: its place is kept
        var restarted = Static("consumer-a");
        Assert.NotEqual(first.MemberId, restarted.MemberId);
        await restarted.StartAsync();
        Assert.Equal(before, restarted.Assignment);
        Assert.Equal(3, second.Assignment.Count);
        var group = await setup.Client.DescribeGroupAsync("g2");
        Assert.Equal(epochBefore, group.GroupEpoch);
        await GroupWatchTests.AssertImagesAgreeAsync(setup, "g2"); // the returned member logged under its new member id

        // A second process with the same instance id is refused while the first holds it.
        var duplicate = Static("consumer-a");
        var refused = await Assert.ThrowsAsync<MetaApiException>(() => duplicate.StartAsync());
        Assert.Equal(ErrorCodes.UnreleasedInstanceId, refused.Code);

        await restarted.DisposeAsync();
    }

    [Fact]
    public async Task A_regular_expression_subscription_picks_up_a_topic_created_later()
    {
        await using var setup = await MetaSetup.StartAsync("groups-regex", silos: 2, settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("metrics-cpu", 2, 3));
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("logs", 2, 3));
        await using var consumer = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "g3", TopicRegex = "metrics-.*" });
        await consumer.StartAsync();
        await Eventually.Until(() => Task.FromResult(consumer.Assignment.Count == 2), "the member owns metrics-cpu's partitions", TimeSpan.FromSeconds(20));
        Assert.All(consumer.Assignment, p => Assert.Equal("metrics-cpu", p.Topic));

        await setup.Client.CreateTopicAsync(new CreateTopicRequest("metrics-disk", 3, 3));
        await Eventually.Until(() => Task.FromResult(consumer.Assignment.Count == 5), "the member also owns metrics-disk's partitions", TimeSpan.FromSeconds(20));
        Assert.DoesNotContain(consumer.Assignment, p => p.Topic == "logs");

        var bad = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.SendGroupHeartbeatAsync("g3",
            new GroupHeartbeatRequest(Guid.NewGuid().ToString(), 0, SubscribedTopicRegex: "metrics-(")));
        Assert.Equal(ErrorCodes.InvalidRegularExpression, bad.Code);
        Assert.Equal(400, bad.StatusCode);
    }

    [Fact]
    public async Task Stored_positions_are_committed_before_a_revocation_is_acknowledged_and_when_the_consumer_leaves()
    {
        await using var setup = await MetaSetup.StartAsync("groups-auto-commit", settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("ledger", 4, 3));

        // An interval far beyond the test: only a revocation and leaving commit here. The first consumer "processes"
        // each partition it gets up to offset 100 + partition and stores that position.
        GroupConsumerOptions Options() => new() { GroupId = "g-auto", Topics = ["ledger"], AutoCommitInterval = TimeSpan.FromHours(1) };
        var first = new GroupConsumer(setup.Client, Options());
        first.PartitionsAssigned += change =>
        {
            foreach (var (topic, partition) in change.Partitions)
            {
                Assert.True(first.StoreOffset(topic, partition, 100 + partition));
            }
        };
        await first.StartAsync();
        await Eventually.Until(() => Task.FromResult(first.UncommittedPositions.Count == 4), "the first member stored a position for each partition", TimeSpan.FromSeconds(20));
        Assert.Empty((await setup.Client.FetchOffsetsAsync("g-auto", ["ledger"])).Offsets);
        Assert.False(first.StoreOffset("ledger", 9, 5), "a partition the consumer does not own is not stored");

        // The second consumer looks, the moment each partition is given to it, at what the group has committed for it:
        // the first consumer's position must already be there.
        var seenAtAssignment = new System.Collections.Concurrent.ConcurrentDictionary<int, long?>();
        await using var second = new GroupConsumer(setup.Client, Options());
        second.PartitionsAssigned += change =>
        {
            var committed = setup.Client.FetchOffsetsAsync("g-auto", ["ledger"]).GetAwaiter().GetResult().Offsets;
            foreach (var (_, partition) in change.Partitions)
            {
                seenAtAssignment[partition] = committed.FirstOrDefault(o => o.Partition == partition)?.Offset;
            }
        };
        await second.StartAsync();
        // (The handler runs after the assignment is visible, so its look is waited for too.)
        await Eventually.Until(() => Task.FromResult(first.Assignment.Count == 2 && second.Assignment.Count == 2 && seenAtAssignment.Count == 2),
            "the members own two partitions each", TimeSpan.FromSeconds(30));
        Assert.All(seenAtAssignment, p => Assert.Equal(100 + p.Key, p.Value));

        // Only the revoked partitions were committed: the first consumer's own still wait for the interval.
        var kept = first.Assignment.Select(p => p.Partition).ToHashSet();
        Assert.Equal(kept, first.UncommittedPositions.Keys.Select(p => p.Partition).ToHashSet());
        Assert.DoesNotContain((await setup.Client.FetchOffsetsAsync("g-auto", ["ledger"])).Offsets, o => kept.Contains(o.Partition));

        // Leaving commits the rest, before the second consumer is given them.
        await first.DisposeAsync();
        await Eventually.Until(() => Task.FromResult(second.Assignment.Count == 4 && seenAtAssignment.Count == 4), "the second member owns every partition", TimeSpan.FromSeconds(30));
        Assert.All(seenAtAssignment, p => Assert.Equal(100 + p.Key, p.Value));
    }

    [Fact]
    public async Task Stored_positions_are_committed_every_interval_and_a_newer_one_is_not_lost_to_an_older_commit()
    {
        await using var setup = await MetaSetup.StartAsync("groups-auto-interval", silos: 1, settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("clicks", 2, 3));
        await using var consumer = new GroupConsumer(setup.Client,
            new GroupConsumerOptions { GroupId = "g-interval", Topics = ["clicks"], AutoCommitInterval = TimeSpan.FromMilliseconds(200) });
        var failures = new List<MetaApiException>();
        consumer.CommitFailed += failures.Add;
        await consumer.StartAsync();
        await Eventually.Until(() => Task.FromResult(consumer.Assignment.Count == 2), "the member owns both partitions", TimeSpan.FromSeconds(20));

        async Task<Dictionary<int, long>> CommittedAsync()
            => (await setup.Client.FetchOffsetsAsync("g-interval", ["clicks"])).Offsets.ToDictionary(o => o.Partition, o => o.Offset);
        for (var round = 1; round <= 20; round++)
        {
            Assert.True(consumer.StoreOffset("clicks", 0, round * 10));
            Assert.True(consumer.StoreOffset("clicks", 1, round * 20));
            await Task.Delay(TimeSpan.FromMilliseconds(37));
        }

        await Eventually.Until(async () => await CommittedAsync() is { } c && c.GetValueOrDefault(0) == 200 && c.GetValueOrDefault(1) == 400,
            "the last stored positions are committed", TimeSpan.FromSeconds(10));
        await Eventually.Until(() => Task.FromResult(consumer.UncommittedPositions.Count == 0), "nothing is left uncommitted", TimeSpan.FromSeconds(10));
        Assert.Equal(0, await consumer.CommitStoredAsync());
        Assert.Empty(failures);
    }

    [Fact]
    public async Task Commits_are_fenced_by_the_member_epoch_and_survive_a_restart_of_every_silo()
    {
        await using var setup = await MetaSetup.StartAsync("groups-offsets", settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("payments", 4, 3));
        var first = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "g4", Topics = ["payments"] });
        await first.StartAsync();
        await Eventually.Until(() => Task.FromResult(first.Assignment.Count == 4), "the first member owns every partition", TimeSpan.FromSeconds(20));
        var oldEpoch = first.MemberEpoch;
        await first.CommitAsync([new PartitionOffset("payments", 0, 100), new PartitionOffset("payments", 1, 200)]);

        // A second member joins: the first member's epoch moves on, and a commit with the old one is refused.
        await using var second = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "g4", Topics = ["payments"] });
        await second.StartAsync();
        await Eventually.Until(() => Task.FromResult(first.MemberEpoch > oldEpoch && second.Assignment.Count == 2), "the first member moved to a new epoch", TimeSpan.FromSeconds(20));
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.CommitOffsetsAsync("g4",
            new CommitOffsetsRequest(first.MemberId, oldEpoch, [new PartitionOffset("payments", 0, 999)])));
        Assert.Equal(ErrorCodes.StaleMemberEpoch, stale.Code);
        var outsider = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.CommitOffsetsAsync("g4",
            new CommitOffsetsRequest(null, -1, [new PartitionOffset("payments", 0, 999)])));
        Assert.Equal(ErrorCodes.UnknownMemberId, outsider.Code);
        await first.CommitAsync([new PartitionOffset("payments", 0, 150, LeaderEpoch: 3, Metadata: "checkpoint")]);
        await first.DisposeAsync();

        // Every silo restarts; the offsets are read back from PostgreSQL.
        foreach (var silo in setup.Silos)
        {
            await silo.StopAsync();
        }

        foreach (var silo in setup.Cluster.Silos.OfType<InProcessSilo>().ToList())
        {
            await setup.Cluster.RestartInProcessSiloAsync(silo);
        }

        await setup.Cluster.WaitForAgreementAsync();
        using var client = setup.Cluster.CreateClient();
        var offsets = (await client.FetchOffsetsAsync("g4", ["payments"])).Offsets;
        Assert.Equal([(0, 150L), (1, 200L)], offsets.Select(o => (o.Partition, o.Offset)));
        Assert.Equal("checkpoint", offsets[0].Metadata);
        Assert.Equal(3, offsets[0].LeaderEpoch);
    }

    [Fact]
    public async Task Bad_group_requests_are_refused_with_the_field_named_and_change_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("groups-bad", silos: 1, settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("t", 1, 3));
        async Task<MetaApiException> Refused(Func<Task> call) => await Assert.ThrowsAsync<MetaApiException>(call);

        var badId = await Refused(() => setup.Client.DescribeGroupAsync("bad group!"));
        Assert.Equal(ErrorCodes.InvalidGroupId, badId.Code);
        Assert.Contains("group id", badId.Detail, StringComparison.Ordinal);

        var unknown = await Refused(() => setup.Client.SendGroupHeartbeatAsync("g5", new GroupHeartbeatRequest("m1", 7)));
        Assert.Equal(ErrorCodes.UnknownMemberId, unknown.Code);

        var noSubscription = await Refused(() => setup.Client.SendGroupHeartbeatAsync("g5", new GroupHeartbeatRequest("m1", 0)));
        Assert.Equal(400, noSubscription.StatusCode);
        Assert.Contains("subscribedTopicNames", noSubscription.Detail, StringComparison.Ordinal);

        var assignor = await Refused(() => setup.Client.SendGroupHeartbeatAsync("g5", new GroupHeartbeatRequest("m1", 0, SubscribedTopicNames: ["t"], ServerAssignor: "sticky")));
        Assert.Equal(ErrorCodes.UnsupportedAssignor, assignor.Code);

        var epoch = await Refused(() => setup.Client.SendGroupHeartbeatAsync("g5", new GroupHeartbeatRequest("m1", -3)));
        Assert.Contains("memberEpoch", epoch.Detail, StringComparison.Ordinal);

        var partition = await Refused(() => setup.Client.CommitOffsetsAsync("g5", new CommitOffsetsRequest(null, -1, [new PartitionOffset("t", 5, 1)])));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, partition.Code);
        var negative = await Refused(() => setup.Client.CommitOffsetsAsync("g5", new CommitOffsetsRequest(null, -1, [new PartitionOffset("t", 0, -4)])));
        Assert.Contains("offsets[0].offset", negative.Detail, StringComparison.Ordinal);
        var badName = await Refused(() => setup.Client.CommitOffsetsAsync("g5", new CommitOffsetsRequest(null, -1, [new PartitionOffset("t", 0, 1), new PartitionOffset("bad name!", 0, 1)])));
        Assert.Equal((ErrorCodes.InvalidTopic, 400), (badName.Code, badName.StatusCode));
        Assert.Contains("offsets[1].topic", badName.Detail, StringComparison.Ordinal);
        var unknownTopic = await Refused(() => setup.Client.CommitOffsetsAsync("g5", new CommitOffsetsRequest(null, -1, [new PartitionOffset("never-created", 0, 1)])));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, unknownTopic.Code);
        Assert.Contains("offsets[0]: topic 'never-created' does not exist", unknownTopic.Detail, StringComparison.Ordinal);

        // Nothing above created the group.
        var missing = await Refused(() => setup.Client.DescribeGroupAsync("g5"));
        Assert.Equal(ErrorCodes.GroupIdNotFound, missing.Code);

        // A standalone commit (no members) is allowed, then fetch and delete.
        await setup.Client.CommitOffsetsAsync("g5", new CommitOffsetsRequest(null, -1, [new PartitionOffset("t", 0, 42)]));
        Assert.Equal(42, Assert.Single((await setup.Client.FetchOffsetsAsync("g5")).Offsets).Offset);
        Assert.Equal(1, (await setup.Client.DeleteOffsetsAsync("g5", ["t"])).Deleted);
        Assert.Empty((await setup.Client.FetchOffsetsAsync("g5")).Offsets);
    }

    /// <summary>Feeds the server's view of every member (describe) into <paramref name="history"/> until cancelled.</summary>
    private static async Task PollAsync(MetaClient client, string groupId, AssignmentHistory history, CancellationToken cancellationToken)
    {
        var known = new Dictionary<string, HashSet<TopicPartition>>(StringComparer.Ordinal);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // One description is one moment: apply what every member gave up before what any member gained.
                var group = await client.DescribeGroupAsync(groupId, cancellationToken);
                foreach (var gone in known.Keys.Where(id => group.Members.All(m => m.MemberId != id)).ToList())
                {
                    history.Leave(gone);
                    known.Remove(gone);
                }

                var now = group.Members.ToDictionary(m => m.MemberId, m => m.Assignment.Concat(m.PendingRevocation)
                    .SelectMany(t => t.Partitions.Select(p => new TopicPartition(t.TopicId, p))).ToHashSet());
                foreach (var member in group.Members.Where(m => known.ContainsKey(m.MemberId)))
                {
                    history.Observe(member.MemberId, member.MemberEpoch, now[member.MemberId].Where(known[member.MemberId].Contains));
                }

                foreach (var member in group.Members)
                {
                    history.Observe(member.MemberId, member.MemberEpoch, now[member.MemberId]);
                    known[member.MemberId] = now[member.MemberId];
                }

                await Task.Delay(50, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (MetaApiException exception) when (exception.Code == ErrorCodes.GroupIdNotFound)
            {
                // Not created yet.
            }
        }
    }

    /// <summary>What each consumer owns, as its events say, checked in real time: no partition with two owners.</summary>
    private sealed class OwnershipWatch(Guid topicId)
    {
        private readonly Lock _lock = new();
        private readonly AssignmentHistory _history = new(checkSameEpoch: false);
        private readonly Dictionary<GroupConsumer, HashSet<TopicPartition>> _owned = [];

        public GroupConsumer Track(GroupConsumer consumer)
        {
            lock (_lock)
            {
                _owned[consumer] = [];
            }

            consumer.PartitionsRevoked += change => Apply(consumer, change, add: false);
            consumer.PartitionsAssigned += change => Apply(consumer, change, add: true);
            return consumer;
        }

        public void Forget(GroupConsumer consumer)
        {
            lock (_lock)
            {
                _owned.Remove(consumer);
                _history.Leave(consumer.MemberId);
            }
        }

        public void ThrowIfViolated()
        {
            lock (_lock)
            {
                _history.ThrowIfViolated();
            }
        }

        private void Apply(GroupConsumer consumer, AssignmentChange change, bool add)
        {
            lock (_lock)
            {
                if (!_owned.TryGetValue(consumer, out var owned))
                {
                    return;
                }

                foreach (var (_, partition) in change.Partitions)
                {
                    if (add)
                    {
                        owned.Add(new TopicPartition(topicId, partition));
                    }
                    else
                    {
                        owned.Remove(new TopicPartition(topicId, partition));
                    }
                }

                _history.Observe(consumer.MemberId, change.MemberEpoch, owned);
            }
        }
    }
}
