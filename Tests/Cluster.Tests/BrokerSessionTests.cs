using Microsoft.Extensions.DependencyInjection;
using System.Collections.Concurrent;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Cluster.PostgreSql;
using OrleansMeta.Runtime.Placement;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The SDK's broker session on real silos and PostgreSQL.</summary>
public sealed class BrokerSessionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_broker_session_is_unfenced_survives_the_kill_of_the_silo_it_talks_to_and_shuts_down_in_a_controlled_way()
    {
        await using var cluster = new TestCluster("broker-session");
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var victim = silos[0];

        // A broker whose grain (where its session lives) is on the silo the client talks to first: killing that silo
        // takes both the connection and the session's owner away.
        var view = await victim.GetClusterAsync();
        var active = view.Silos.Where(s => s.Status == "active").Select(s => new SiloAddress(s.Endpoint, s.Generation)).ToList();
        var brokerId = Enumerable.Range(1, 1000).First(id =>
            RendezvousPlacement.Owner(new GrainId("broker", id.ToString(System.Globalization.CultureInfo.InvariantCulture)), active)!.Endpoint == victim.SiloEndpoint);
        using var client = new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [.. silos.Select(s => s.Http.BaseAddress!)],
            RequestTimeout = TimeSpan.FromSeconds(3),
            MaxAttempts = 3,
            RetryBaseDelay = TimeSpan.FromMilliseconds(50),
            RetryMaxDelay = TimeSpan.FromMilliseconds(500),
        });
        var registered = new ConcurrentQueue<BrokerRegisteredEventArgs>();
        var errors = new ConcurrentQueue<BrokerSessionErrorEventArgs>();
        await using var session = new BrokerSession(client, brokerId, [new BrokerListener("PLAINTEXT", $"broker-{brokerId}.test", 9092)], "rack-a",
            new BrokerSessionOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(300), CallTimeout = TimeSpan.FromSeconds(5) });
        session.Registered += (_, e) => registered.Enqueue(e);
        session.Error += (_, e) => errors.Enqueue(e);

        await session.StartAsync();
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);
        var epoch = session.BrokerEpoch;
        // The session heard "unfenced" from the silo owning the broker's grain (where the SDK sends heartbeats); the
        // list is read from a bootstrap silo, whose image may be a moment behind.
        BrokerInfo listed = null!;
        await Eventually.Until(async () =>
        {
            listed = (await client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == brokerId);
            return listed.State == "unfenced";
        }, "the bootstrap silo's image shows the broker unfenced", TimeSpan.FromSeconds(10));
        Assert.Equal((session.IncarnationId, epoch, "unfenced", "rack-a"), (listed.IncarnationId, listed.BrokerEpoch, listed.State, listed.Rack));

        victim.Kill();
        var killedAt = DateTimeOffset.UtcNow;
        await cluster.WaitForAgreementAsync(Within);

        // The session carries on through the survivors: answered heartbeats after the kill, unfenced as the service
        // sees it, and never faulted.
        await Eventually.Until(async () =>
        {
            var survivor = (await client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == brokerId);
            return session.LastHeartbeatAt > killedAt.AddSeconds(1) && session.State == BrokerSessionState.Unfenced
                && survivor.State == "unfenced" && survivor.BrokerEpoch == session.BrokerEpoch;
        }, "the session heartbeats through the survivors and is unfenced", Within);
        Assert.False(session.Completion.IsCompleted);
        Assert.All(errors, e => Assert.True(e.WillRetry));
        output.WriteLine($"broker {brokerId}: {errors.Count} retried errors, {registered.Count} registrations, epoch {epoch} -> {session.BrokerEpoch}");

        // Controlled shutdown: the service lets it go, the session stops, and the service no longer counts it as live.
        Assert.True(await session.ShutDownAsync().WaitAsync(Within));
        Assert.Equal(BrokerSessionState.Stopped, session.State);
        await session.Completion;
        var after = (await client.ListBrokersAsync()).Brokers.Single(b => b.BrokerId == brokerId);
        Assert.NotEqual("unfenced", after.State);
    }

    [Fact]
    public async Task Brokers_keep_their_sessions_while_silos_join_and_take_over_their_grains()
    {
        // Each joining silo takes about a third of the broker grains, where the sessions live, and before loading one
        // makes sure the silo that held it has released it (docs/safety.md). The brokers' heartbeats wait on that; the
        // sessions must not lapse meanwhile.
        await using var cluster = new TestCluster("join-sessions", new Dictionary<string, string>
        {
            ["Meta:Brokers:SessionTimeout"] = "00:00:03",
        });
        var first = await cluster.StartInProcessSiloAsync();
        await cluster.WaitForAgreementAsync();
        using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [first.Http.BaseAddress!], MaxAttempts = 10 });
        var brokers = Enumerable.Range(1, 12).Select(id => new TestBroker(client, id)).ToList();
        foreach (var broker in brokers)
        {
            await broker.StartAsync();
        }

        await Eventually.Until(async () => (await client.ListBrokersAsync()).Brokers.All(b => b.State == "unfenced"),
            "every broker is unfenced", Within);
        var before = (await client.ListBrokersAsync()).MetadataOffset;

        var joined = new List<InProcessSilo>();
        for (var i = 0; i < 2; i++)
        {
            joined.Add(await cluster.StartInProcessSiloAsync());
            await cluster.WaitForAgreementAsync();
        }

        // Longer than a session, with heartbeats reaching the broker grains' new owners.
        await Task.Delay(TimeSpan.FromSeconds(4));

        foreach (var silo in joined.Prepend(first))
        {
            output.WriteLine($"{silo.Name}: {silo.Services.GetRequiredService<PostgresClusterMembership>().HandOver}");
        }

        Assert.All(joined, silo => Assert.True(silo.Services.GetRequiredService<PostgresClusterMembership>().HandOver.PeerQuestions > 0,
            $"{silo.Name} took broker grains over without asking the silo that held them"));
        var after = await client.ListBrokersAsync(minOffset: (await client.ListBrokersAsync()).MetadataOffset);
        Assert.All(after.Brokers, b => Assert.Equal("unfenced", b.State));
        Assert.Equal(0L, await OverlapTests.SessionExpiriesAfterAsync(cluster.ClusterId, before));
        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }
}
