using System.Net;
using OrleansMeta.Membership.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests;

/// <summary>A silo cut off from its peers (both ways) while all still reach PostgreSQL.</summary>
public sealed class PartitionTests(ITestOutputHelper output)
{
    // The chaos runner's timings (FastClusterSettings), under which a stalled silo was seen to take its peers down.
    private static void ChaosTimings(MembershipOptions options)
    {
        options.ProbeInterval = TimeSpan.FromMilliseconds(250);
        options.ProbeTimeout = TimeSpan.FromMilliseconds(250);
        options.RefreshInterval = TimeSpan.FromMilliseconds(500);
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
    }

    [Theory]
    [InlineData("cut")]
    [InlineData("stall")]
    public async Task A_silo_cut_off_from_its_peers_is_declared_dead_and_its_votes_never_kill_a_healthy_peer(string fault)
    {
        var clusterId = TestPostgres.NewClusterId("partition");

        // Every silo is reached through a proxy in front of its private listen port; the isolated one connects to its
        // peers from an address of its own, so that their proxies can drop what it sends.
        var isolatedAddress = IPAddress.Parse("127.0.0.21");
        var proxies = new List<TcpProxy>();
        var silos = new List<TestSilo>();
        try
        {
            foreach (var name in new[] { "a", "b", "isolated" })
            {
                var listenPort = TestSilo.FreePort();
                var proxy = new TcpProxy("127.0.0.1", listenPort);
                proxies.Add(proxy);
                silos.Add(await TestSilo.StartAsync(clusterId, output, name, ChaosTimings, port: proxy.Port, listenPort: listenPort,
                    outboundAddress: name == "isolated" ? isolatedAddress.ToString() : null));
            }

            var (a, b, isolated) = (silos[0], silos[1], silos[2]);
            await Eventually.Until(() => silos.All(s => s.Membership.IsActive && s.Membership.CurrentView.ActiveSilos.Count == 3), "three active silos");

            // Cut: connections close and new ones are dropped. Stall: they stay open and no byte moves.
            Action<TcpProxy, IPAddress?> partition = fault == "cut" ? (p, from) => p.Cut(from) : (p, from) => p.Stall(from);
            partition(proxies[2], null);
            partition(proxies[0], isolatedAddress);
            partition(proxies[1], isolatedAddress);

            await Eventually.Until(() => isolated.StopWasRequested, "the isolated silo reads itself dead and stops", TimeSpan.FromSeconds(20));

            // It went on probing its unreachable peers until its loops ended; once declared dead it must not have voted
            // either of them dead (alone, in a view where its own death left one vote enough).
            await isolated.StopAsync();
            Assert.Equal("Dead", await TestPostgres.StatusAsync(clusterId, isolated.Self.Endpoint, isolated.Self.Generation));
            Assert.Equal("Active", await TestPostgres.StatusAsync(clusterId, a.Self.Endpoint, a.Self.Generation));
            Assert.Equal("Active", await TestPostgres.StatusAsync(clusterId, b.Self.Endpoint, b.Self.Generation));
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }

            foreach (var proxy in proxies)
            {
                await proxy.DisposeAsync();
            }
        }
    }
}
