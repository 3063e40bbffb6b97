using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// A consumer group's coordinator (Kafka's FindCoordinator) on a three-silo cluster with PostgreSQL: the lookup names
/// the silo where the group's activation lives, the SDK sends the group's calls there without a forwarding hop, and
/// when that silo dies the SDK falls back to the other silos and keeps committing.
/// </summary>
public sealed class CoordinatorTests
{
    private static readonly Dictionary<string, string> FastGroups = GroupSettings.Fast(TimeSpan.FromSeconds(2));

    [Fact]
    public async Task The_coordinator_lookup_names_the_silo_holding_the_groups_activation_and_the_sdk_reaches_it_without_forwarding()
    {
        await using var setup = await MetaSetup.StartAsync("coordinator-routing", settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("orders", 4, 3));
        var groups = Enumerable.Range(0, 9).Select(i => $"route-{i}").ToList();
        var commit = (int offset) => new CommitOffsetsRequest(null, -1, [new PartitionOffset("orders", 0, offset), new PartitionOffset("orders", 1, offset)]);

        // Through any silo first (routing off): the calls that land on a silo that does not own the group are
        // forwarded, which shows the counter sees forwarding at all.
        using (var anySilo = new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [.. setup.Silos.Select(s => s.Http.BaseAddress!)],
            RouteCallsToOwner = false,
        }))
        {
            var before = ForwardedGroupCalls(setup);
            foreach (var group in groups)
            {
                await anySilo.CommitOffsetsAsync(group, commit(1));
            }

            Assert.True(ForwardedGroupCalls(setup) - before > 0, "some of nine groups are owned by another silo than the first bootstrap silo");
        }

        // The lookup names the silo where each group's grain is active, with that silo's own public URL.
        var owners = new Dictionary<string, InProcessSilo>();
        foreach (var group in groups)
        {
            var found = await setup.Client.FindCoordinatorAsync(group);
            var owner = Assert.Single(setup.Silos, s => HoldsActivation(s, group));
            Assert.Equal(group, found.GroupId);
            Assert.Equal($"http://127.0.0.1:{owner.PublicPort}/", found.Url);
            Assert.Equal(owner.Name, found.SiloName);
            Assert.StartsWith(owner.SiloEndpoint + "@", found.Silo, StringComparison.Ordinal);
            Assert.Equal((await owner.GetClusterAsync()).ViewVersion, found.ViewVersion);
            owners[group] = owner;
        }

        Assert.True(owners.Values.Distinct().Count() > 1, "nine groups spread over more than one silo");

        // A silo that forwards a group's call names the coordinator in its answer; the coordinator itself does not.
        var sample = owners[groups[0]];
        var forwarded = await setup.Silos.First(s => s != sample).Http.GetAsync($"/v1/groups/{groups[0]}/offsets");
        Assert.Equal($"http://127.0.0.1:{sample.PublicPort}/", Assert.Single(forwarded.Headers.GetValues(GroupHeaders.Coordinator)));
        Assert.False((await sample.Http.GetAsync($"/v1/groups/{groups[0]}/offsets")).Headers.Contains(GroupHeaders.Coordinator));

        // A fresh client with routing on (the default) and no lookup: the first call of each group may be forwarded
        // (the forwarding silo names the coordinator in its answer); every later heartbeat, commit and fetch is not.
        using var client = setup.Cluster.CreateClient();
        foreach (var group in groups)
        {
            await client.CommitOffsetsAsync(group, commit(2));
        }

        var learned = ForwardedGroupCalls(setup);
        var consumers = new List<GroupConsumer>();
        foreach (var group in groups.Take(3))
        {
            var consumer = new GroupConsumer(client, new GroupConsumerOptions { GroupId = group, Topics = ["orders"] });
            await consumer.StartAsync();
            consumers.Add(consumer);
        }

        await Eventually.Until(() => Task.FromResult(consumers.All(c => c.Assignment.Count == 4)), "each consumer owns its group's four partitions", TimeSpan.FromSeconds(20));
        for (var round = 3; round < 6; round++)
        {
            foreach (var consumer in consumers)
            {
                await consumer.CommitAsync([new PartitionOffset("orders", 0, round), new PartitionOffset("orders", 1, round)]);
            }

            foreach (var group in groups.Skip(3))
            {
                await client.CommitOffsetsAsync(group, commit(round));
            }
        }

        foreach (var group in groups)
        {
            Assert.Equal([5L, 5L], (await client.FetchOffsetsAsync(group, ["orders"])).Offsets.Select(o => o.Offset));
        }

        Assert.Equal(0, ForwardedGroupCalls(setup) - learned);
        Assert.All(groups, group => Assert.True(HoldsActivation(owners[group], group), $"{group} still lives on {owners[group].Name}"));
        foreach (var consumer in consumers)
        {
            await consumer.DisposeAsync();
        }
    }

    [Fact]
    public async Task When_the_coordinator_is_killed_the_sdk_falls_back_keeps_committing_and_reads_every_acknowledged_commit()
    {
        await using var setup = await MetaSetup.StartAsync("coordinator-failover", settings: FastGroups);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("events", 2, 3));
        using var client = setup.Cluster.CreateClient();

        // A group whose coordinator is not the client's first bootstrap silo, so that the fallback is to a live silo
        // the client already uses for everything else.
        var group = Enumerable.Range(0, 50).Select(i => $"failover-{i}").First(g => Owner(setup, g) != setup.Silos[0]);
        var found = await client.FindCoordinatorAsync(group);
        var coordinator = setup.Silos.Single(s => found.Url == $"http://127.0.0.1:{s.PublicPort}/");
        await client.CommitOffsetsAsync(group, new CommitOffsetsRequest(null, -1, [new PartitionOffset("events", 0, 10)]));
        Assert.True(HoldsActivation(coordinator, group));

        // A member of another group with the same coordinator, heartbeating through the kill.
        var membersGroup = Enumerable.Range(0, 50).Select(i => $"members-{i}").First(g => Owner(setup, g) == coordinator);
        await using var consumer = new GroupConsumer(client, new GroupConsumerOptions { GroupId = membersGroup, Topics = ["events"] });
        await consumer.StartAsync();
        await Eventually.Until(() => consumer.Assignment.Count == 2, "the consumer owns both partitions", TimeSpan.FromSeconds(20));
        var before = ForwardedGroupCalls(setup);
        var acknowledged = new Dictionary<int, long>();
        for (var offset = 11; offset <= 20; offset++)
        {
            await client.CommitOffsetsAsync(group, new CommitOffsetsRequest(null, -1, [new PartitionOffset("events", offset % 2, offset)]));
            acknowledged[offset % 2] = offset;
        }

        Assert.Equal(0, ForwardedGroupCalls(setup) - before);

        await coordinator.KillAsync();

        // The SDK's next commits: the first one's attempt at the dead coordinator is refused, and it goes to the
        // bootstrap silos, which forward it once they have declared the dead silo dead and the group has a new owner.
        var next = 21L;
        await Eventually.Until(async () =>
        {
            try
            {
                await client.CommitOffsetsAsync(group, new CommitOffsetsRequest(null, -1, [new PartitionOffset("events", (int)(next % 2), next)]));
                acknowledged[(int)(next % 2)] = next;
                next++;
                return true;
            }
            catch (MetaApiException e) when (e.IsRetryable)
            {
                return false;
            }
        }, "a commit succeeds after the coordinator died", TimeSpan.FromSeconds(30));

        var survivors = setup.Silos.Where(s => s.IsRunning).ToList();
        var moved = await client.FindCoordinatorAsync(group);
        var newCoordinator = Assert.Single(survivors, s => moved.Url == $"http://127.0.0.1:{s.PublicPort}/");
        Assert.True(moved.ViewVersion > found.ViewVersion);

        // Routed to the new coordinator: a run of commits with no forwarding, and nothing acknowledged is lost.
        var survivorsBefore = survivors.Sum(ForwardedGroupCalls);
        for (; next <= 30; next++)
        {
            await client.CommitOffsetsAsync(group, new CommitOffsetsRequest(null, -1, [new PartitionOffset("events", (int)(next % 2), next)]));
            acknowledged[(int)(next % 2)] = next;
        }

        Assert.Equal(0, survivors.Sum(ForwardedGroupCalls) - survivorsBefore);
        Assert.True(HoldsActivation(newCoordinator, group));
        var offsets = (await client.FetchOffsetsAsync(group, ["events"])).Offsets;
        Assert.Equal(acknowledged.OrderBy(a => a.Key).Select(a => (a.Key, a.Value)), offsets.Select(o => (o.Partition, o.Offset)));

        // The member whose coordinator died carries on through the survivors (rejoining if the new coordinator forgot
        // it) and owns the topic again.
        await Eventually.Until(async () =>
        {
            if (consumer.Assignment.Count != 2)
            {
                return false;
            }

            try
            {
                await consumer.CommitAsync([new PartitionOffset("events", 0, 7)]);
                return true;
            }
            catch (MetaApiException e) when (e.IsRetryable || e.Code is ErrorCodes.StaleMemberEpoch or ErrorCodes.FencedMemberEpoch or ErrorCodes.UnknownMemberId)
            {
                return false; // the member is being fenced and rejoins
            }
        }, "the consumer owns both partitions again and commits", TimeSpan.FromSeconds(30));
        Assert.Equal(7, Assert.Single((await client.FetchOffsetsAsync(membersGroup, ["events"])).Offsets).Offset);
    }

    [Fact]
    public async Task A_bad_group_id_is_refused_with_the_field_named_and_a_single_silo_cluster_names_itself()
    {
        await using var setup = await MetaSetup.StartAsync("coordinator-input", silos: 1);

        var bad = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.FindCoordinatorAsync("bad group!"));
        Assert.Equal(400, bad.StatusCode);
        Assert.Equal(ErrorCodes.InvalidGroupId, bad.Code);
        Assert.Contains("group id", bad.Detail, StringComparison.Ordinal);
        Assert.False(bad.IsRetryable);

        var tooLong = await setup.Silos[0].Http.GetAsync($"/v1/groups/{new string('g', 250)}/coordinator");
        Assert.Equal(400, (int)tooLong.StatusCode);
        Assert.Contains(ErrorCodes.InvalidGroupId, await tooLong.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var self = await setup.Client.FindCoordinatorAsync("g");
        Assert.Equal($"http://127.0.0.1:{setup.Silos[0].PublicPort}/", self.Url);

        var document = System.Text.Json.JsonDocument.Parse(await setup.Silos[0].Http.GetStringAsync("/openapi/v1.json")).RootElement;
        var lookup = document.GetProperty("paths").GetProperty("/v1/groups/{groupId}/coordinator").GetProperty("get");
        Assert.Equal("FindCoordinator", lookup.GetProperty("operationId").GetString());
        Assert.Contains(ErrorCodes.InvalidGroupId, lookup.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.True(lookup.GetProperty("responses").TryGetProperty("503", out _));
    }

    private static long ForwardedGroupCalls(InProcessSilo silo) => silo.IsRunning ? silo.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls("group") : 0;

    private static long ForwardedGroupCalls(MetaSetup setup) => setup.Silos.Sum(ForwardedGroupCalls);

    private static bool HoldsActivation(InProcessSilo silo, string groupId)
        => silo.IsRunning && silo.Services.GetRequiredService<ActivationCatalog>().Activations.Any(a => a.GrainId == new GrainId("group", groupId));

    /// <summary>The owner by placement over the first silo's view (all silos agree once the setup has started).</summary>
    private static InProcessSilo Owner(MetaSetup setup, string groupId)
    {
        var location = setup.Silos[0].Services.GetRequiredService<Runtime.Placement.GrainLocator>().Locate<GrainInterfaces.IConsumerGroupGrain>(groupId);
        return setup.Silos.Single(s => s.SiloEndpoint == location.Owner!.Address.Endpoint);
    }
}
