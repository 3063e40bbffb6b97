using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Silo.Api;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Log offsets reported by brokers, consumer-group lag, listing every group from memory, resets to
/// earliest/latest, and offset expiry, on a three-silo cluster with PostgreSQL.</summary>
public sealed class GroupLagTests
{
    private const long LogStart = 5;
    private const long LogEnd = 1000;

    [Fact]
    public async Task Reported_log_offsets_give_every_silo_the_lag_of_every_group_and_resets_to_earliest_and_latest()
    {
        await using var setup = await MetaSetup.StartAsync("groups-lag");
        var topic = (await setup.Client.CreateTopicAsync(new CreateTopicRequest("clicks", 4, 3))).Topic;
        var groups = Enumerable.Range(0, 30).Select(i => $"lag-{i:D2}").ToList();
        for (var i = 0; i < groups.Count; i++)
        {
            await setup.Client.CommitOffsetsAsync(groups[i], new CommitOffsetsRequest(null, -1,
                [.. Enumerable.Range(0, 4).Select(p => new PartitionOffset("clicks", p, Committed(i, p)))]));
        }

        // Before any report the lag is unknown, not zero.
        var unknown = await setup.Client.ListGroupsAsync();
        Assert.Equal(groups, unknown.Groups.Select(g => g.GroupId));
        Assert.All(unknown.Groups, g => Assert.Equal((4, 0L), (g.PartitionsWithoutLag, g.TotalLag)));

        // Each leader reports its partitions, through a different silo each; one broker also reports a partition it does not lead.
        var answers = await ReportAsync(setup, topic, LogStart, LogEnd);
        Assert.Equal(4, answers.Sum(a => a.Accepted));
        Assert.Equal(0, answers.Sum(a => a.UnknownPartitions));
        var notLeader = await ReportAsync(setup, topic, 0, 1, reportOthersFor: setup.Brokers[0]);
        Assert.Equal(topic.Partitions.Count(p => p.Leader != setup.Brokers[0].Id), notLeader.Sum(a => a.NotLeader));

        // Every silo lists every group with its lag, and describes a group with each partition's lag (reports reach
        // the other silos in the background).
        await WaitForEveryLagAsync(setup, groups);
        foreach (var silo in setup.Silos)
        {
            using var client = ClientOf(silo);
            var listed = await client.ListGroupsAsync();
            Assert.Empty(listed.UnreachableSilos);
            Assert.All(listed.Groups, g => Assert.Equal((0, ExpectedLag(groups.IndexOf(g.GroupId)), "empty", 4),
                (g.PartitionsWithoutLag, g.TotalLag, g.State, g.CommittedPartitions)));
            var described = await client.DescribeGroupAsync("lag-07");
            Assert.Equal(ExpectedLag(7), described.TotalLag);
            Assert.All(described.Offsets, o => Assert.Equal((LogEnd, LogEnd - Committed(7, o.Partition)), (o.LogEndOffset!.Value, o.Lag!.Value)));
        }

        // Each group is active on exactly one silo, and the listing asked each silo once.
        Assert.Equal(groups.Count, setup.Silos.Sum(s => s.Services.GetRequiredService<GroupDirectory>().Count));
        Assert.Empty((await setup.Client.ListGroupsAsync(["stable"])).Groups);

        // Reports that are wrong change nothing: a stale broker epoch, a log end below its start.
        var broker = setup.Brokers[0];
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.ReportLogOffsetsAsync(broker.Id,
            new LogOffsetsReport(broker.Epoch - 1, [new TopicLogOffsets("clicks", [new PartitionLogOffsets(0, 0, 1)])])));
        Assert.Equal((409, ErrorCodes.StaleBrokerEpoch), (stale.StatusCode, stale.Code));
        var backwards = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.ReportLogOffsetsAsync(broker.Id,
            new LogOffsetsReport(broker.Epoch, [new TopicLogOffsets("clicks", [new PartitionLogOffsets(0, 10, 1), new PartitionLogOffsets(1, 10, 2)])])));
        Assert.Equal(400, backwards.StatusCode);
        Assert.Contains("$.topics[0].partitions[0].logEndOffset", backwards.Message, StringComparison.Ordinal);
        var unregistered = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.ReportLogOffsetsAsync(99, new LogOffsetsReport(1, [])));
        Assert.Equal((404, ErrorCodes.BrokerIdNotRegistered), (unregistered.StatusCode, unregistered.Code));
        Assert.Equal(ExpectedLag(3), (await setup.Client.DescribeGroupAsync("lag-03")).TotalLag);

        // Resets of an empty group to the reported earliest and latest offsets; a dry run writes nothing.
        var dry = await setup.Client.ResetOffsetsAsync("lag-01", new ResetOffsetsRequest(DryRun: true, To: "earliest", Topics: ["clicks"]));
        Assert.All(dry.Offsets, o => Assert.Equal(LogStart, o.Offset));
        Assert.Equal(ExpectedLag(1), (await setup.Client.DescribeGroupAsync("lag-01")).TotalLag);
        await setup.Client.ResetOffsetsAsync("lag-01", new ResetOffsetsRequest(To: "earliest", Topics: ["clicks"]));
        Assert.Equal(4 * (LogEnd - LogStart), (await setup.Client.DescribeGroupAsync("lag-01")).TotalLag);
        await setup.Client.ResetOffsetsAsync("lag-01", new ResetOffsetsRequest(To: "latest", Topics: ["clicks"]));
        var latest = await setup.Client.FetchOffsetsAsync("lag-01");
        Assert.All(latest.Offsets, o => Assert.Equal((LogEnd, 0L), (o.Offset, o.Lag!.Value)));

        // A topic no leader has reported cannot be reset to earliest or latest; nothing is written.
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("quiet", 2, 3));
        var notReported = await Assert.ThrowsAsync<MetaApiException>(() =>
            setup.Client.ResetOffsetsAsync("lag-02", new ResetOffsetsRequest(To: "latest", Topics: ["quiet", "clicks"])));
        Assert.Equal((409, ErrorCodes.OffsetNotAvailable), (notReported.StatusCode, notReported.Code));
        var badTo = await Assert.ThrowsAsync<MetaApiException>(() =>
            setup.Client.ResetOffsetsAsync("lag-02", new ResetOffsetsRequest(To: "newest", Topics: ["clicks"])));
        Assert.Equal(400, badTo.StatusCode);
        Assert.Contains("to must be 'earliest' or 'latest'", badTo.Message, StringComparison.Ordinal);
        Assert.Equal(ExpectedLag(2), (await setup.Client.DescribeGroupAsync("lag-02")).TotalLag);
        var badState = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.ListGroupsAsync(["busy"]));
        Assert.Equal(400, badState.StatusCode);
    }

    [Fact]
    public async Task A_report_to_one_silo_reaches_every_other_silo_in_the_background_latest_value_first()
    {
        await using var setup = await MetaSetup.StartAsync("groups-lag-fanout");
        var topic = (await setup.Client.CreateTopicAsync(new CreateTopicRequest("clicks", 4, 3))).Topic;
        var groups = Enumerable.Range(0, 30).Select(i => $"fan-{i:D2}").ToList();
        for (var i = 0; i < groups.Count; i++)
        {
            await setup.Client.CommitOffsetsAsync(groups[i], new CommitOffsetsRequest(null, -1,
                [.. Enumerable.Range(0, 4).Select(p => new PartitionOffset("clicks", p, Committed(i, p)))]));
        }

        // Groups live on every silo (each computes lag from its own silo's table), and every report goes through silo 0.
        Assert.All(setup.Silos, s => Assert.True(s.Services.GetRequiredService<GroupDirectory>().Count > 0, $"{s} owns a group"));
        var reporter = setup.Silos[0];
        using (var client = ClientOf(reporter))
        {
            foreach (var end in new[] { LogEnd - 10, LogEnd })
            {
                foreach (var broker in setup.Brokers)
                {
                    var partitions = topic.Partitions.Where(p => p.Leader == broker.Id).Select(p => new PartitionLogOffsets(p.Partition, LogStart, end)).ToList();
                    await client.ReportLogOffsetsAsync(broker.Id, new LogOffsetsReport(broker.Epoch, [new TopicLogOffsets("clicks", partitions)]));
                }
            }
        }

        // The later report wins everywhere, as it would if both had been sent one by one.
        await WaitForEveryLagAsync(setup, groups);
        foreach (var silo in setup.Silos)
        {
            using var client = ClientOf(silo);
            Assert.Equal(ExpectedLag(5), (await client.DescribeGroupAsync("fan-05")).TotalLag);
        }

        var fanOut = reporter.Services.GetRequiredService<LogOffsetsFanOut>();
        var self = reporter.Services.GetRequiredService<IClusterMembership>().Self!;
        foreach (var peer in reporter.Services.GetRequiredService<IClusterMembership>().CurrentView.ActiveSilos.Where(s => s != self))
        {
            var statistics = fanOut.StatisticsOf(peer);
            Assert.NotNull(statistics);
            Assert.Equal((0, 0L, 0L), (statistics.Value.Pending, statistics.Value.FailedBatches, statistics.Value.Dropped));
            Assert.InRange(statistics.Value.SentBatches, 1, 2 * setup.Brokers.Count);
        }
    }

    [Fact]
    public async Task A_stuck_silo_does_not_hold_up_a_report_nor_the_other_silos_copies()
    {
        // A minute per batch to a silo, and a silo whose log-offsets endpoint holds every request until the test lets
        // it go: the report is answered while the batch to that silo is held there, neither sent nor failed.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = new StrongBox<int>();
        await using var cluster = new TestCluster("groups-lag-stuck", new Dictionary<string, string>
        {
            ["Meta:LogOffsets:PeerTimeout"] = "00:01:00",
        });
        var reporter = await cluster.StartInProcessSiloAsync();
        var other = await cluster.StartInProcessSiloAsync();
        var stuck = await cluster.StartInProcessSiloAsync(configureServices: services =>
            services.AddSingleton<IStartupFilter>(new HoldPath(SiloEndpoints.Prefix + "/log-offsets", release.Task, held)));
        await cluster.WaitForAgreementAsync();
        using var client = ClientOf(reporter);
        await using var broker = new TestBroker(client, 1);
        await broker.StartAsync();
        await broker.WaitUnfencedAsync();
        var created = await client.CreateTopicAsync(new CreateTopicRequest("views", 2, 1));
        var topic = created.Topic;
        Assert.All(topic.Partitions, p => Assert.Equal(broker.Id, p.Leader));

        // The reporting silo checks reports on its image: it must hold the topic first.
        await reporter.Services.GetRequiredService<MetadataImageService>().WaitForAsync(created.MetadataOffset, TimeSpan.FromSeconds(30));
        var stuckAddress = stuck.Services.GetRequiredService<IClusterMembership>().Self!;
        var fanOut = reporter.Services.GetRequiredService<LogOffsetsFanOut>();

        try
        {
            var answer = await client.ReportLogOffsetsAsync(broker.Id,
                new LogOffsetsReport(broker.Epoch, [new TopicLogOffsets("views", [new PartitionLogOffsets(0, 1, 50), new PartitionLogOffsets(1, 2, 60)])]));
            Assert.Equal(2, answer.Accepted);

            // Answered while the stuck silo's batch is neither sent nor failed: the request did not wait for it.
            var toStuck = fanOut.StatisticsOf(stuckAddress);
            Assert.NotNull(toStuck);
            Assert.Equal((0L, 0L), (toStuck.Value.SentBatches, toStuck.Value.FailedBatches));
            Assert.Equal(2, toStuck.Value.Pending + toStuck.Value.InFlight);
            await Eventually.Until(() => Task.FromResult(Volatile.Read(ref held.Value) >= 1), "the batch reaches the stuck silo and is held there", TimeSpan.FromSeconds(30));

            // The running silo gets its copy meanwhile: each silo has its own sender.
            await Eventually.Until(() => Task.FromResult(HasLogEnds(other, topic.TopicId)), "the running silo holds the reported log ends", TimeSpan.FromSeconds(30));
            Assert.False(HasLogEnds(stuck, topic.TopicId), "the stuck silo has not applied the report");
        }
        finally
        {
            release.TrySetResult();
        }

        // Let go, the stuck silo applies the batch it was holding.
        await Eventually.Until(() => Task.FromResult(HasLogEnds(stuck, topic.TopicId)), "the stuck silo holds the reported log ends once let go", TimeSpan.FromSeconds(30));
        await Eventually.Until(() => Task.FromResult(fanOut.StatisticsOf(stuckAddress)?.SentBatches == 1), "the batch to the stuck silo is counted sent", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Every_group_with_offsets_is_listed_after_every_silo_restarts_without_being_called()
    {
        await using var setup = await MetaSetup.StartAsync("groups-load");
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("views", 2, 3));
        var groups = Enumerable.Range(0, 40).Select(i => $"load-{i:D2}").ToList();
        foreach (var group in groups)
        {
            await setup.Client.CommitOffsetsAsync(group, new CommitOffsetsRequest(null, -1, [new PartitionOffset("views", 0, 7), new PartitionOffset("views", 1, 9)]));
        }

        foreach (var silo in setup.Silos)
        {
            await silo.StopAsync();
        }

        foreach (var silo in setup.Cluster.Silos.OfType<InProcessSilo>().ToList())
        {
            await setup.Cluster.RestartInProcessSiloAsync(silo);
        }

        await setup.Cluster.WaitForAgreementAsync();

        // Nobody calls the groups: each silo's loader activates the ones it owns.
        var running = setup.Cluster.Silos.OfType<InProcessSilo>().Where(s => s.IsRunning).ToList();
        await Eventually.Until(() => Task.FromResult(running.Sum(s => s.Services.GetRequiredService<GroupDirectory>().Count) == groups.Count),
            "every group with offsets is active on some silo", TimeSpan.FromSeconds(30));
        using var client = setup.Cluster.CreateClient();
        var listed = await client.ListGroupsAsync();
        Assert.Equal(groups, listed.Groups.Select(g => g.GroupId));
        Assert.All(listed.Groups, g => Assert.Equal((2, 2), (g.CommittedPartitions, g.PartitionsWithoutLag)));
    }

    [Fact]
    public async Task Offsets_of_topics_no_member_consumes_expire_after_the_retention_and_an_empty_group_then_goes()
    {
        await using var setup = await MetaSetup.StartAsync("groups-expiry", silos: 2, settings: new Dictionary<string, string>
        {
            ["Meta:Groups:HeartbeatInterval"] = "00:00:00.200",
            ["Meta:Groups:SessionTimeout"] = "00:00:02",
            ["Meta:Groups:SessionCheckInterval"] = "00:00:00.100",
            ["Meta:Groups:OffsetsRetention"] = "00:00:03",
            ["Meta:Groups:OffsetsRetentionCheckInterval"] = "00:00:00.250",
        });
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("kept", 1, 3));
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("dropped", 1, 3));

        // A group whose member consumes "kept" but has an old offset of "dropped" too.
        await setup.Client.CommitOffsetsAsync("busy", new CommitOffsetsRequest(null, -1, [new PartitionOffset("kept", 0, 1), new PartitionOffset("dropped", 0, 2)]));
        await using var member = new GroupConsumer(setup.Client, new GroupConsumerOptions { GroupId = "busy", Topics = ["kept"] });
        await member.StartAsync();

        // A group nobody consumes for: all its offsets go, then the group.
        await setup.Client.CommitOffsetsAsync("idle", new CommitOffsetsRequest(null, -1, [new PartitionOffset("kept", 0, 3)]));

        await Eventually.Until(async () => (await setup.Client.FetchOffsetsAsync("busy")).Offsets.All(o => o.Topic == "kept"),
            "the offset of the topic no member consumes expired", TimeSpan.FromSeconds(20));
        Assert.Equal([("kept", 1L)], (await setup.Client.FetchOffsetsAsync("busy")).Offsets.Select(o => (o.Topic, o.Offset)));
        await Eventually.Until(async () => (await setup.Client.ListGroupsAsync()).Groups.All(g => g.GroupId != "idle"),
            "the idle group expired", TimeSpan.FromSeconds(20));
        var gone = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.DescribeGroupAsync("idle"));
        Assert.Equal(ErrorCodes.GroupIdNotFound, gone.Code);

        // The member keeps its offset for as long as it consumes the topic, past the retention.
        await member.CommitAsync([new PartitionOffset("kept", 0, 11)]);
        var committed = DateTimeOffset.UtcNow;
        await Eventually.Until(() => Task.FromResult(DateTimeOffset.UtcNow - committed > TimeSpan.FromSeconds(4)), "the retention has passed", TimeSpan.FromSeconds(10));
        Assert.Equal([("kept", 11L)], (await setup.Client.FetchOffsetsAsync("busy")).Offsets.Select(o => (o.Topic, o.Offset)));
    }

    private static long Committed(int group, int partition) => (10 * group) + partition;

    private static bool HasLogEnds(InProcessSilo silo, Guid topicId)
    {
        var table = silo.Services.GetRequiredService<LogOffsetsTable>();
        return table.TryGetLogEnd(topicId, 0, out var end0) && end0 == 50 && table.TryGetLogEnd(topicId, 1, out var end1) && end1 == 60;
    }

    /// <summary>Holds every request to <paramref name="path"/> until <paramref name="release"/> completes, counting them.</summary>
    private sealed class HoldPath(string path, Task release, StrongBox<int> held) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, rest) =>
            {
                if (context.Request.Path.Equals(path, StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref held.Value);
                    await release.WaitAsync(context.RequestAborted);
                }

                await rest(context);
            });
            next(app);
        };
    }

    /// <summary>Waits until every silo lists every group with the lag of the last report (LogEnd).</summary>
    private static Task WaitForEveryLagAsync(MetaSetup setup, List<string> groups) => Eventually.Until(async () =>
    {
        foreach (var silo in setup.Silos)
        {
            using var client = ClientOf(silo);
            var listed = await client.ListGroupsAsync();
            if (listed.UnreachableSilos.Count > 0 || !listed.Groups.Select(g => g.GroupId).SequenceEqual(groups) ||
                listed.Groups.Any(g => g.PartitionsWithoutLag != 0 || g.TotalLag != ExpectedLag(groups.IndexOf(g.GroupId))))
            {
                return false;
            }
        }

        return true;
    }, "every silo lists every group with its lag", TimeSpan.FromSeconds(30));

    private static long ExpectedLag(int group) => Enumerable.Range(0, 4).Sum(p => LogEnd - Committed(group, p));

    private static MetaClient ClientOf(SiloHandle silo) => new(new MetaClientOptions { BootstrapUrls = [silo.Http.BaseAddress!], MaxAttempts = 1 });

    /// <summary>Each broker reports the partitions it leads, each through another silo; <paramref name="reportOthersFor"/>
    /// instead reports the partitions it does not lead.</summary>
    private static async Task<List<LogOffsetsReportResponse>> ReportAsync(
        MetaSetup setup, TopicDescription topic, long start, long end, TestBroker? reportOthersFor = null)
    {
        var answers = new List<LogOffsetsReportResponse>();
        var brokers = reportOthersFor is null ? setup.Brokers : [reportOthersFor];
        for (var i = 0; i < brokers.Count; i++)
        {
            var broker = brokers[i];
            var partitions = topic.Partitions.Where(p => reportOthersFor is null ? p.Leader == broker.Id : p.Leader != broker.Id)
                .Select(p => new PartitionLogOffsets(p.Partition, start, end)).ToList();
            using var client = ClientOf(setup.Silos[i % setup.Silos.Count]);
            answers.Add(await client.ReportLogOffsetsAsync(broker.Id, new LogOffsetsReport(broker.Epoch, [new TopicLogOffsets(topic.Name, partitions)])));
        }

        return answers;
    }
}
