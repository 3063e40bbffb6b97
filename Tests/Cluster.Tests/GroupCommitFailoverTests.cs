using System.Diagnostics;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Issue 10: a group's grain moving to another silo mid-commit loses nothing acknowledged. Three silo processes on
/// PostgreSQL, groups committing a stream of growing offsets, kill -9 of the silo that owns some of the groups while
/// commits are in flight, commits going on through the SDK's fallback, then every partition read back.
/// </summary>
public sealed class GroupCommitFailoverTests(ITestOutputHelper output)
{
    private const string Topic = "commits";
    private const int Partitions = 4;

    private static readonly Dictionary<string, string> FastGroups = GroupSettings.Fast(TimeSpan.FromSeconds(5));

    [Fact]
    public async Task Killing_the_silo_that_owns_a_group_mid_commit_loses_no_acknowledged_commit()
    {
        await using var cluster = new TestCluster("group-kill9", FastGroups);
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        using var admin = cluster.CreateClient();
        var brokers = await TestBroker.StartUnfencedAsync(admin, 1, 2, 3);
        await admin.CreateTopicAsync(new CreateTopicRequest(Topic, Partitions, 2));

        // Which silo owns which group is a pure function of the group id and the view (hash placement): pick the
        // silo that owns the most groups, with at least one group of each kind.
        var view = await silos[0].GetClusterAsync();
        var active = view.Silos.Where(s => s.Status == "active").Select(s => new SiloAddress(s.Endpoint, s.Generation)).ToList();
        var groups = Enumerable.Range(0, 8).Select(i => new Committer($"kill9-g{i}", member: i % 2 == 0)).ToList();
        foreach (var group in groups)
        {
            group.Owner = RendezvousPlacement.Owner(new GrainId("group", group.GroupId), active)!.Endpoint;
        }

        var victim = silos
            .Where(s => groups.Any(g => g.Owner == s.SiloEndpoint && g.IsMember) && groups.Any(g => g.Owner == s.SiloEndpoint && !g.IsMember))
            .MaxBy(s => groups.Count(g => g.Owner == s.SiloEndpoint))
            ?? silos.MaxBy(s => groups.Count(g => g.Owner == s.SiloEndpoint))!;
        var moving = groups.Where(g => g.Owner == victim.SiloEndpoint).ToList();
        Assert.NotEmpty(moving);
        output.WriteLine($"victim {victim}: owns {string.Join(", ", moving.Select(g => g.GroupId))}");

        // Committers reach every silo; a short attempt timeout makes a commit stuck on the dead silo move on soon.
        using var client = new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [.. silos.Select(s => s.Http.BaseAddress!)],
            RequestTimeout = TimeSpan.FromSeconds(3),
            MaxAttempts = 10,
        });
        var consumers = new List<GroupConsumer>();
        foreach (var group in groups.Where(g => g.IsMember))
        {
            group.Consumer = new GroupConsumer(client, new GroupConsumerOptions { GroupId = group.GroupId, Topics = [Topic] });
            consumers.Add(group.Consumer);
            await group.Consumer.StartAsync();
        }

        await Eventually.Until(() => consumers.All(c => c.Assignment.Count == Partitions), "each group's one member owns every partition", TimeSpan.FromSeconds(30));

        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var committing = groups.Select(g => Task.Run(() => g.RunAsync(client, clock, stop.Token))).ToList();
        await Eventually.Until(() => groups.All(g => g.Acknowledged(after: 0) >= 20), "every group has 20 acknowledged commits", TimeSpan.FromSeconds(60));

        var killedAt = clock.ElapsedTicks;
        victim.Kill();
        await Eventually.Until(() => groups.All(g => g.Acknowledged(after: killedAt) >= 30),
            "every group, the moved ones too, has 30 commits sent and acknowledged after the kill", TimeSpan.FromSeconds(90));
        await stop.CancelAsync();
        await Task.WhenAll(committing);

        var inFlight = moving.Sum(g => g.InFlightAt(killedAt));
        Assert.True(inFlight > 0, "no commit of a moved group was in flight when its silo was killed");

        using var reader = new MetaClient(new MetaClientOptions { BootstrapUrls = [.. silos.Where(s => s != victim).Select(s => s.Http.BaseAddress!)], MaxAttempts = 10 });
        var problems = new List<string>();
        foreach (var group in groups)
        {
            var read = (await reader.FetchOffsetsAsync(group.GroupId)).Offsets.Where(o => o.Topic == Topic).ToDictionary(o => o.Partition, o => o.Offset);
            problems.AddRange(group.Check(read));
            output.WriteLine(group.Summary(read, killedAt));
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
        foreach (var consumer in consumers)
        {
            await consumer.DisposeAsync();
        }

        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }

    /// <summary>One group's committer: commits offsets n, n+1, ... to every partition, one call at a time, as a
    /// member (with the consumer's member id and current epoch) or standalone (no member id, epoch -1), and keeps
    /// every call with its outcome.</summary>
    private sealed class Committer(string groupId, bool member)
    {
        private readonly Lock _lock = new();
        private readonly List<Call> _calls = [];

        public string GroupId { get; } = groupId;

        public bool IsMember { get; } = member;

        public string? Owner { get; set; }

        public GroupConsumer? Consumer { get; set; }

        public async Task RunAsync(IMetaClient client, Stopwatch clock, CancellationToken stop)
        {
            for (long offset = 1; !stop.IsCancellationRequested; offset++)
            {
                var request = new CommitOffsetsRequest(Consumer?.MemberId, Consumer?.MemberEpoch ?? -1,
                    [.. Enumerable.Range(0, Partitions).Select(p => new PartitionOffset(Topic, p, offset))]);
                var invoked = clock.ElapsedTicks;
                string outcome;
                try
                {
                    await client.CommitOffsetsAsync(GroupId, request, stop);
                    outcome = "ok";
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    outcome = "unknown";
                }
                catch (MetaApiException e)
                {
                    // With resends, a refusal may follow an attempt that was applied: either way it is not acknowledged.
                    outcome = e.StatusCode is >= 400 and < 500 ? $"refused {e.Code}" : $"unknown {e.Code}";
                }

                lock (_lock)
                {
                    _calls.Add(new Call(offset, invoked, clock.ElapsedTicks, outcome));
                }
            }
        }

        public int Acknowledged(long after)
        {
            lock (_lock)
            {
                return _calls.Count(c => c.Outcome == "ok" && c.Invoked > after);
            }
        }

        public int InFlightAt(long at)
        {
            lock (_lock)
            {
                return _calls.Count(c => c.Invoked <= at && c.Completed >= at);
            }
        }

        /// <summary>Each partition reads at least the last acknowledged offset, and a value that was sent: commits set
        /// offsets, so a later commit whose answer was lost may have landed, an earlier one must not win.</summary>
        public List<string> Check(IReadOnlyDictionary<int, long> read)
        {
            var problems = new List<string>();
            lock (_lock)
            {
                var lastAcknowledged = _calls.Where(c => c.Outcome == "ok").Max(c => c.Offset);
                for (var partition = 0; partition < Partitions; partition++)
                {
                    if (!read.TryGetValue(partition, out var value))
                    {
                        problems.Add($"{GroupId} {Topic}/{partition}: nothing readable, {lastAcknowledged} was acknowledged");
                    }
                    else if (value < lastAcknowledged)
                    {
                        problems.Add($"{GroupId} {Topic}/{partition}: reads {value}, below the acknowledged {lastAcknowledged}");
                    }
                    else if (_calls.All(c => c.Offset != value))
                    {
                        problems.Add($"{GroupId} {Topic}/{partition}: reads {value}, which was never sent (the last sent is {_calls[^1].Offset})");
                    }
                }
            }

            return problems;
        }

        public string Summary(IReadOnlyDictionary<int, long> read, long killedAt)
        {
            lock (_lock)
            {
                var outcomes = string.Join(", ", _calls.GroupBy(c => c.Outcome).Select(g => $"{g.Key} x{g.Count()}"));
                var stuck = _calls.FirstOrDefault(c => c.Invoked <= killedAt && c.Completed >= killedAt);
                var resumed = _calls.FirstOrDefault(c => c.Outcome == "ok" && c.Completed > killedAt);
                var resumedIn = resumed is null ? "never" : $"{(double)(resumed.Completed - killedAt) / Stopwatch.Frequency:F2} s";
                var slowest = _calls.Where(c => c.Outcome == "ok" && c.Invoked > killedAt).Select(c => c.Completed - c.Invoked).DefaultIfEmpty().Max();
                var held = stuck is null ? "none" : $"{stuck.Offset} ({stuck.Outcome}, {(double)(stuck.Completed - stuck.Invoked) / Stopwatch.Frequency:F2} s)";
                return $"{GroupId} ({(IsMember ? "member" : "standalone")}, owner {Owner}): {outcomes}; last acknowledged "
                    + $"{_calls.Where(c => c.Outcome == "ok").Max(c => c.Offset)}, last sent {_calls[^1].Offset}; reads [{string.Join(",", read.OrderBy(kv => kv.Key).Select(kv => kv.Value))}]; "
                    + $"in flight at the kill: {held}; first acknowledgement after the kill {resumedIn} after it; "
                    + $"slowest commit sent after the kill {(double)slowest / Stopwatch.Frequency:F2} s";
            }
        }

        private sealed record Call(long Offset, long Invoked, long Completed, string Outcome);
    }
}
