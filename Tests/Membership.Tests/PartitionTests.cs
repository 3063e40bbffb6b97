using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using OrleansMeta.Membership.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests;

/// <summary>
/// Silos cut off from their peers (both ways, or one way) while all still reach PostgreSQL. The rules under test
/// (docs/membership.md): a silo votes only when it reached more than half of the other active silos in the same probe
/// round; a vote is withdrawn once its voter reaches the suspect again; in two silos nobody votes.
/// </summary>
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
    public async Task A_silo_cut_off_from_both_peers_is_declared_dead_by_them_and_never_votes_against_them(string fault)
    {
        await using var cluster = await ProxiedCluster.StartAsync(output, 3, ChaosTimings);
        var (a, b, isolated) = (cluster.Silos[0], cluster.Silos[1], cluster.Silos[2]);
        var votedAgainstHealthy = cluster.WatchVotesAgainst(a, b);

        cluster.Isolate(isolated, stall: fault == "stall");

        await Eventually.Until(() => isolated.StopWasRequested, "the isolated silo reads itself dead and stops", TimeSpan.FromSeconds(20));

        // It went on probing its unreachable peers until its loops ended. Reaching neither of them, it must not have
        // voted against either (its vote plus any other would have removed a healthy silo; and once it was declared
        // dead, in a view with one active silo fewer, one vote would have been "enough").
        await isolated.StopAsync();
        Assert.Equal("Dead", await TestPostgres.StatusAsync(cluster.ClusterId, isolated.Self.Endpoint, isolated.Self.Generation));
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, a.Self.Endpoint, a.Self.Generation));
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, b.Self.Endpoint, b.Self.Generation));
        Assert.Empty(votedAgainstHealthy);
        Assert.Equal(new[] { a.Self, b.Self }.Order(), a.Membership.CurrentView.Find(isolated.Self)!.Suspicions.Select(v => v.Voter).Order());
    }

    /// <summary>
    /// The isolated silo's vote is the danger, not its death: the race above is usually won by its two peers. Here it
    /// first loses only its own connections to them (it sees both silent while they still reach it, so nobody votes
    /// it dead yet), long enough to vote many times over; then the cut becomes two-way.
    /// </summary>
    [Fact]
    public async Task A_silo_that_reaches_neither_peer_does_not_vote_even_while_they_still_reach_it()
    {
        await using var cluster = await ProxiedCluster.StartAsync(output, 3, ChaosTimings);
        var (a, b, isolated) = (cluster.Silos[0], cluster.Silos[1], cluster.Silos[2]);
        var votedAgainstHealthy = cluster.WatchVotesAgainst(a, b);

        cluster.Proxy(a).Cut(cluster.Outbound(isolated));
        cluster.Proxy(b).Cut(cluster.Outbound(isolated));

        // Eight probe rounds: a vote takes three. Neither a vote against the peers nor a removal may happen.
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(2))
        {
            Assert.Empty(votedAgainstHealthy);
            Assert.True(a.Membership.IsActive && b.Membership.IsActive && isolated.Membership.IsActive, "nobody is removed yet");
            await Task.Delay(50);
        }

        cluster.Proxy(isolated).Cut();
        await Eventually.Until(() => isolated.StopWasRequested, "the isolated silo is declared dead and stops", TimeSpan.FromSeconds(20));
        await isolated.StopAsync();
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, a.Self.Endpoint, a.Self.Generation));
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, b.Self.Endpoint, b.Self.Generation));
        Assert.Empty(votedAgainstHealthy);
    }

    /// <summary>
    /// The chaos runner's seed 8: one silo was paused long enough for one peer (not both) to vote against it, and a
    /// few seconds after it resumed a third silo's peer traffic stalled. The stale vote plus the stalled silo's new one
    /// made two, the resumed (healthy) silo was declared dead, and the stalled silo alone then removed the last one.
    /// Here "paused, seen by one peer only" is a one-way cut from that peer, which is what the votes saw.
    /// </summary>
    [Fact]
    public async Task A_vote_from_a_healed_episode_does_not_add_up_with_a_later_stall_of_another_silo()
    {
        await using var cluster = await ProxiedCluster.StartAsync(output, 3, ChaosTimings);
        var (s0, s1, s2) = (cluster.Silos[0], cluster.Silos[1], cluster.Silos[2]);

        // Episode one: s0 does not reach s1 (s2 still does), so s0 alone votes against s1.
        cluster.Proxy(s1).Cut(cluster.Outbound(s0));
        await Eventually.Until(
            async () => (await s0.Membership.RefreshAsync()).Find(s1.Self)!.Suspicions.Any(v => v.Voter == s0.Self),
            "s0 votes against s1", TimeSpan.FromSeconds(10));
        Assert.True(s0.Membership.CurrentView.IsActive(s1.Self), "one vote of two must not remove s1");

        // It heals; s0 reaches s1 again and takes its vote back well before the vote would expire (20 s).
        cluster.Proxy(s1).Heal();
        await Eventually.Until(
            async () => (await s0.Membership.RefreshAsync()).Find(s1.Self)!.Suspicions.All(v => v.Voter != s0.Self),
            "s0 withdraws its vote against s1 once s1 answers again", TimeSpan.FromSeconds(5));

        // Episode two, seconds later: s2's peer traffic stalls both ways. The two connected silos remove s2; s2, which
        // reaches neither, votes against nobody, and s1 is not removed by an old vote plus a new one.
        var votedAgainstHealthy = cluster.WatchVotesAgainst(s0, s1);
        cluster.Isolate(s2, stall: true);
        await Eventually.Until(() => s2.StopWasRequested, "the stalled silo is declared dead and stops", TimeSpan.FromSeconds(20));

        await s2.StopAsync();
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, s0.Self.Endpoint, s0.Self.Generation));
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, s1.Self.Endpoint, s1.Self.Generation));
        Assert.Equal("Dead", await TestPostgres.StatusAsync(cluster.ClusterId, s2.Self.Endpoint, s2.Self.Generation));
        Assert.Empty(votedAgainstHealthy);
    }

    /// <summary>
    /// Two silos that cannot reach each other cannot tell which of them is cut off: each sees exactly what the other
    /// sees. Neither votes, so neither removes the other; both keep their leases (they reach PostgreSQL) and stay
    /// Active, calls between them fail (retryable) until the cut heals, and then nothing needs repairing. A silo that
    /// really died is still removed, by its stale heartbeat (FailureDetectionTests).
    /// </summary>
    [Fact]
    public async Task Two_silos_cut_from_each_other_both_stay_active_and_carry_on_when_it_heals()
    {
        await using var cluster = await ProxiedCluster.StartAsync(output, 2, ChaosTimings);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var votes = cluster.WatchVotesAgainst(a, b);

        cluster.Isolate(b, stall: false);

        // Many times the time a vote would take (3 missed probes of 250 ms), well under the heartbeat staleness (10 s).
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(4))
        {
            Assert.False(a.StopWasRequested || b.StopWasRequested, "neither silo may be declared dead");
            Assert.True(a.Membership.IsActive && b.Membership.IsActive, "both keep their lease and stay active");
            await Task.Delay(50);
        }

        cluster.Proxy(b).Heal();
        cluster.Proxy(a).Heal();
        await Eventually.Until(
            async () => (await a.Membership.RefreshAsync()).ActiveSilos.Count == 2 && b.Membership.CurrentView.ActiveSilos.Count == 2,
            "both are active in both views");
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, a.Self.Endpoint, a.Self.Generation));
        Assert.Equal("Active", await TestPostgres.StatusAsync(cluster.ClusterId, b.Self.Endpoint, b.Self.Generation));
        Assert.Empty(votes);
    }

    /// <summary>Silos each behind a proxy in front of its private listen port, each connecting to its peers from an
    /// address of its own (127.0.0.x), so that a test can cut or stall what one silo sends and receives.</summary>
    private sealed class ProxiedCluster : IAsyncDisposable
    {
        private static int s_nextAddress = 40;
        private readonly List<TcpProxy> _proxies = [];
        private readonly List<IPAddress> _outbound = [];

        private ProxiedCluster(string clusterId) => ClusterId = clusterId;

        public string ClusterId { get; }

        public List<TestSilo> Silos { get; } = [];

        public static async Task<ProxiedCluster> StartAsync(ITestOutputHelper output, int count, Action<MembershipOptions> configure)
        {
            var cluster = new ProxiedCluster(TestPostgres.NewClusterId("partition"));
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var listenPort = TestSilo.FreePort();
                    var proxy = new TcpProxy("127.0.0.1", listenPort);
                    var outbound = IPAddress.Parse($"127.0.0.{Interlocked.Increment(ref s_nextAddress) % 200 + 20}");
                    cluster._proxies.Add(proxy);
                    cluster._outbound.Add(outbound);
                    cluster.Silos.Add(await TestSilo.StartAsync(cluster.ClusterId, output, $"s{i}", configure, port: proxy.Port, listenPort: listenPort,
                        outboundAddress: outbound.ToString()));
                }

                await Eventually.Until(
                    () => cluster.Silos.All(s => s.Membership.IsActive && s.Membership.CurrentView.ActiveSilos.Count == count),
                    $"{count} active silos");
                return cluster;
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }

        public TcpProxy Proxy(TestSilo silo) => _proxies[Silos.IndexOf(silo)];

        public IPAddress Outbound(TestSilo silo) => _outbound[Silos.IndexOf(silo)];

        /// <summary>Cuts (connections close, new ones are dropped) or stalls (they stay open, no byte moves) all of
        /// <paramref name="silo"/>'s peer traffic, both ways.</summary>
        public void Isolate(TestSilo silo, bool stall)
        {
            Action<TcpProxy, IPAddress?> fault = stall ? (p, from) => p.Stall(from) : (p, from) => p.Cut(from);
            fault(Proxy(silo), null);
            foreach (var other in Silos.Where(s => s != silo))
            {
                fault(Proxy(other), Outbound(silo));
            }
        }

        /// <summary>Collects every vote that any of these silos' views ever shows against one of <paramref name="silos"/>.</summary>
        public ConcurrentBag<string> WatchVotesAgainst(params TestSilo[] silos)
        {
            var seen = new ConcurrentBag<string>();
            foreach (var watcher in Silos)
            {
                watcher.Membership.ViewChanged += view =>
                {
                    foreach (var target in silos)
                    {
                        foreach (var vote in view.Find(target.Self)?.Suspicions ?? [])
                        {
                            seen.Add($"{vote.Voter} against {target.Self} (view {view.Version})");
                        }
                    }
                };
            }

            return seen;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var silo in Silos)
            {
                await silo.DisposeAsync();
            }

            foreach (var proxy in _proxies)
            {
                await proxy.DisposeAsync();
            }
        }
    }
}
