using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Talking to the owner for metadata writes, on three silos with PostgreSQL: a silo that forwards a topic's config
/// change, a partition's AlterPartition or a broker's heartbeat names the owning silo in its answer, the owner does not,
/// and the SDK sends the same grain's next writes there, so that once learned no write is forwarded.
/// </summary>
public sealed class OwnerRoutingTests
{
    [Fact]
    public async Task Forwarded_metadata_writes_name_the_owner_and_the_sdk_sends_the_next_ones_there()
    {
        await using var setup = await MetaSetup.StartAsync("owner-routing");
        var topics = Enumerable.Range(0, 6).Select(i => $"owned-{i}").ToList();
        long created = 0;
        foreach (var name in topics)
        {
            created = (await setup.Client.CreateTopicAsync(new CreateTopicRequest(name, 3, 3))).MetadataOffset;
        }

        // Raw HTTP: the owner of a partition's grain answers AlterPartition without the header, any other silo with
        // the owner's public URL.
        var described = (await setup.Client.DescribeTopicAsync(topics[0], created)).Topic;
        var partition = described.Partitions[0];
        var owner = Owner<IPartitionGrain>(setup, PartitionKeys.For(described.TopicId, 0));
        var other = setup.Silos.First(s => s != owner);
        var leader = setup.Brokers.Single(b => b.Id == partition.Leader);
        var smaller = partition.Isr.Where(b => b != partition.Replicas[2]).ToList();
        var shrunk = await other.Http.PostAsJsonAsync($"/v1/topics/{topics[0]}/partitions/0/isr",
            new AlterPartitionRequest(leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch, smaller));
        shrunk.EnsureSuccessStatusCode();
        Assert.Equal(Url(owner), Assert.Single(shrunk.Headers.GetValues(RoutingHeaders.Owner)));
        var grown = await owner.Http.PostAsJsonAsync($"/v1/topics/{topics[0]}/partitions/0/isr",
            new AlterPartitionRequest(leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch + 1, partition.Isr));
        grown.EnsureSuccessStatusCode();
        Assert.False(grown.Headers.Contains(RoutingHeaders.Owner));

        // The same for a topic's config change and a broker's heartbeat.
        var topicOwner = Owner<ITopicGrain>(setup, TopicKeys.For(topics[0]));
        var patch = new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = "60000" });
        var viaOther = await setup.Silos.First(s => s != topicOwner).Http.PatchAsJsonAsync($"/v1/topics/{topics[0]}/configs", patch);
        viaOther.EnsureSuccessStatusCode();
        Assert.Equal(Url(topicOwner), Assert.Single(viaOther.Headers.GetValues(RoutingHeaders.Owner)));
        Assert.False((await topicOwner.Http.PatchAsJsonAsync($"/v1/topics/{topics[0]}/configs", patch)).Headers.Contains(RoutingHeaders.Owner));
        var broker = setup.Brokers[0];
        var brokerOwner = Owner<IBrokerGrain>(setup, broker.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var heartbeat = await setup.Silos.First(s => s != brokerOwner).Http.PostAsJsonAsync(
            $"/v1/brokers/{broker.Id}/heartbeat", new BrokerHeartbeatRequest(broker.Epoch, 0));
        heartbeat.EnsureSuccessStatusCode();
        Assert.Equal(Url(brokerOwner), Assert.Single(heartbeat.Headers.GetValues(RoutingHeaders.Owner)));

        // Through the SDK, with one bootstrap silo: each grain's first write may be forwarded (and teaches the owner);
        // then three more rounds of config changes on six topics and ISR changes on eighteen partitions, none forwarded.
        using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [setup.Silos[0].Http.BaseAddress!] });
        await RoundAsync(client, setup, topics, 0);
        var learned = (Forwarded(setup, "topic"), Forwarded(setup, "partition"));
        Assert.True(learned.Item1 + learned.Item2 > 0, "some of 6 topics and 18 partitions are owned by another silo than the bootstrap silo");
        for (var round = 1; round <= 3; round++)
        {
            await RoundAsync(client, setup, topics, round);
        }

        Assert.Equal(learned, (Forwarded(setup, "topic"), Forwarded(setup, "partition")));
        foreach (var name in topics)
        {
            var configs = await client.DescribeTopicConfigsAsync(name);
            Assert.Equal("3", configs.Configs.Single(c => c.Name == "retention.ms").Value);
        }

        // A broker's heartbeats: the first, to a silo that does not own the broker's grain, is forwarded and names the
        // owner; every later one goes to the owner. (Counted at the client: the controller's pings of broker grains are
        // forwarded grain calls too.)
        var counting = new CountingHandler();
        using (var brokerClient = new MetaClient(new MetaClientOptions { BootstrapUrls = [NotOwner(brokerOwner).Http.BaseAddress!], HttpMessageHandler = counting }))
        {
            for (var i = 0; i < 5; i++)
            {
                await brokerClient.SendBrokerHeartbeatAsync(broker.Id, new BrokerHeartbeatRequest(broker.Epoch, 0));
            }
        }

        Assert.Equal(
            [NotOwner(brokerOwner).PublicPort, brokerOwner.PublicPort, brokerOwner.PublicPort, brokerOwner.PublicPort, brokerOwner.PublicPort],
            counting.Sent.Select(u => u.Port));

        InProcessSilo NotOwner(InProcessSilo owner) => setup.Silos.First(s => s != owner);
    }

    [Fact]
    public async Task When_the_owner_of_a_topic_is_killed_the_sdk_falls_back_keeps_writing_and_loses_no_acknowledged_change()
    {
        await using var setup = await MetaSetup.StartAsync("owner-routing-kill");

        // A topic whose grain the client's first bootstrap silo does not own, so that the fallback is to a live silo.
        var topic = Enumerable.Range(0, 50).Select(i => $"moving-{i}").First(t => Owner<ITopicGrain>(setup, TopicKeys.For(t)) != setup.Silos[0]);
        await setup.Client.CreateTopicAsync(new CreateTopicRequest(topic, 2, 3));
        var owner = Owner<ITopicGrain>(setup, TopicKeys.For(topic));
        using var client = setup.Cluster.CreateClient();
        var (acknowledged, offset) = (0, 0L);
        async Task SetAsync(int value)
        {
            var answer = await client.AlterTopicConfigsAsync(topic, new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = Str(value) }));
            (acknowledged, offset) = (value, answer.MetadataOffset);
        }

        for (var value = 1; value <= 5; value++)
        {
            await SetAsync(value);
        }

        var before = Forwarded(setup, "topic");
        await SetAsync(6);
        Assert.Equal(before, Forwarded(setup, "topic")); // learnt: sent to the owner

        await owner.KillAsync();

        // The next writes: the attempt at the dead owner cannot connect, so it goes to a bootstrap silo, which forwards
        // it once the cluster has declared the dead silo dead and the topic has a new owner.
        var next = 7;
        await Eventually.Until(async () =>
        {
            try
            {
                await SetAsync(next);
                next++;
                return true;
            }
            catch (MetaApiException e) when (e.IsRetryable)
            {
                next++; // outcome unknown or refused: the next attempt sets a new value, the check below reads the last
                return false;
            }
        }, "a config change succeeds after the topic's owner died", TimeSpan.FromSeconds(45));

        // Routed to the new owner: a run of writes, none forwarded, and the last acknowledged value is what is read.
        var survivors = setup.Silos.Where(s => s.IsRunning).ToList();
        var newOwner = Owner<ITopicGrain>(setup, TopicKeys.For(topic), survivors[0]);
        await SetAsync(next++);
        var survivorsBefore = survivors.Sum(s => s.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls("topic"));
        for (var i = 0; i < 5; i++)
        {
            await SetAsync(next++);
        }

        Assert.Equal(survivorsBefore, survivors.Sum(s => s.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls("topic")));
        Assert.NotEqual(owner, newOwner);
        var configs = await client.DescribeTopicConfigsAsync(topic, minOffset: offset); // read your writes
        Assert.Equal(Str(acknowledged), configs.Configs.Single(c => c.Name == "retention.ms").Value);
    }

    private static string Str(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Sets retention.ms to <paramref name="round"/> on every topic, and shrinks (even rounds) or restores (odd
    /// rounds) the ISR of every partition, each through its leader's AlterPartition.</summary>
    private static async Task RoundAsync(MetaClient client, MetaSetup setup, List<string> topics, int round)
    {
        foreach (var name in topics)
        {
            var altered = await client.AlterTopicConfigsAsync(name, new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = round.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
            // Writes go to their grains' owners, reads to the bootstrap silo: read at an offset past the last round's
            // partition changes, or a stale partition epoch gets the next AlterPartition refused.
            foreach (var p in (await client.DescribeTopicAsync(name, altered.MetadataOffset)).Topic.Partitions)
            {
                var leader = setup.Brokers.Single(b => b.Id == p.Leader);
                var isr = p.Isr.Count == 3 ? [.. p.Isr.Where(b => b != p.Leader).Take(1).Append(p.Leader)] : p.Replicas;
                await client.AlterPartitionAsync(name, p.Partition, new AlterPartitionRequest(leader.Id, leader.Epoch, p.LeaderEpoch, p.PartitionEpoch, isr));
            }
        }
    }

    /// <summary>Records where each request of a client went.</summary>
    private sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        public System.Collections.Concurrent.ConcurrentQueue<Uri> Sent { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Sent.Enqueue(request.RequestUri!);
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static long Forwarded(MetaSetup setup, string grainType)
        => setup.Silos.Where(s => s.IsRunning).Sum(s => s.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls(grainType));

    private static string Url(InProcessSilo silo) => $"http://127.0.0.1:{silo.PublicPort}/";

    /// <summary>The owner by placement over <paramref name="viewOf"/>'s view, by default the first silo's (all silos
    /// agree once the setup has started).</summary>
    private static InProcessSilo Owner<TGrain>(MetaSetup setup, string key, InProcessSilo? viewOf = null) where TGrain : IGrainWithStringKey
    {
        var location = (viewOf ?? setup.Silos[0]).Services.GetRequiredService<GrainLocator>().Locate<TGrain>(key);
        return setup.Silos.Single(s => s.SiloEndpoint == location.Owner!.Address.Endpoint);
    }
}
