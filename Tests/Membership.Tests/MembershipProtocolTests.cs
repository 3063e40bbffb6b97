using System.Collections.Concurrent;
using OrleansMeta.Membership.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests;

/// <summary>Joining, agreeing, graceful leave and restarts, on real in-process silos and the real PostgreSQL.</summary>
public sealed class MembershipProtocolTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Three_silos_join_at_once_and_agree_on_one_view_version()
    {
        var clusterId = TestPostgres.NewClusterId("join");
        var silos = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => TestSilo.StartAsync(clusterId, output, $"s{i}")));
        await using var a = silos[0];
        await using var b = silos[1];
        await using var c = silos[2];
        var seen = new ConcurrentQueue<long>();
        a.Membership.ViewChanged += view => seen.Enqueue(view.Version);

        await Eventually.Until(
            () => silos.All(s => s.Membership.IsActive && s.Membership.CurrentView.ActiveSilos.Count == 3)
                  && silos.Select(s => s.Membership.CurrentView.Version).Distinct().Count() == 1,
            "all three are active and hold the same view version");

        var view = a.Membership.CurrentView;
        Assert.Equal(silos.Select(s => s.Self).Order(), view.ActiveSilos);

        // Three inserts and three activations, one version each.
        Assert.Equal(6, view.Version);
        Assert.All(silos, s => Assert.Equal(view.ActiveSilos, s.Membership.CurrentView.ActiveSilos));
        var versions = seen.ToArray();
        Assert.Equal(versions.Order().Distinct(), versions);
    }

    [Fact]
    public async Task A_gracefully_stopping_silo_is_seen_shutting_down_then_dead_by_the_others_at_once()
    {
        // Probes and periodic re-reads so slow that only the pushed notices can tell the others in time.
        static void NoProbes(MembershipOptions options)
        {
            TestSilo.Fast(options);
            options.ProbeInterval = TimeSpan.FromMinutes(10);
            options.ProbeTimeout = TimeSpan.FromSeconds(1);
            options.RefreshInterval = TimeSpan.FromMinutes(10);
            options.VoteExpiration = TimeSpan.FromHours(1);
        }

        var clusterId = TestPostgres.NewClusterId("leave");
        await using var a = await TestSilo.StartAsync(clusterId, output, "a", NoProbes);
        await using var b = await TestSilo.StartAsync(clusterId, output, "b", NoProbes);
        await using var leaving = await TestSilo.StartAsync(clusterId, output, "leaving", NoProbes);
        await Eventually.Until(() => a.Membership.CurrentView.ActiveSilos.Count == 3 && b.Membership.CurrentView.ActiveSilos.Count == 3, "all three are active everywhere");
        var self = leaving.Self;

        await leaving.Membership.BeginLeaveAsync();
        Assert.False(leaving.Membership.IsActive);
        await Eventually.Until(
            () => new[] { a, b }.All(s => s.Membership.CurrentView.Find(self)?.Status == SiloStatus.ShuttingDown && !s.Membership.CurrentView.ActiveSilos.Contains(self)),
            "both others see it ShuttingDown and no longer active");

        await leaving.StopAsync();
        await Eventually.Until(() => new[] { a, b }.All(s => s.Membership.CurrentView.Find(self)?.Status == SiloStatus.Dead), "both others see it Dead");
        Assert.Equal("Dead", await TestPostgres.StatusAsync(clusterId, self.Endpoint, self.Generation));
    }

    [Fact]
    public async Task A_silo_that_reads_itself_dead_stops_serving_and_its_row_stays_dead()
    {
        var clusterId = TestPostgres.NewClusterId("self-dead");
        await using var a = await TestSilo.StartAsync(clusterId, output, "a");
        await using var victim = await TestSilo.StartAsync(clusterId, output, "victim");
        await Eventually.Until(() => victim.Membership.IsActive, "the victim is active");
        var self = victim.Self;
        var announced = new TaskCompletionSource<MembershipView>(TaskCreationOptions.RunContinuationsAsynchronously);
        victim.Membership.ViewChanged += view =>
        {
            if (!victim.Membership.IsActive)
            {
                announced.TrySetResult(view);
            }
        };

        // An operator (or a peer with a different opinion) marks it Dead behind its back.
        await TestPostgres.ExecuteAsync(
            """
            WITH v AS (UPDATE membership_version SET version = version + 1 WHERE cluster_id = $1 RETURNING version)
            UPDATE membership SET status = 'Dead' FROM v WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3
            """,
            clusterId, self.Endpoint, self.Generation);

        await Eventually.Until(() => !victim.Membership.IsActive && victim.StopWasRequested, "it stops being active and asks the host to stop");
        Assert.Equal(SiloStatus.Dead, (await announced.Task).Find(self)?.Status);

        // Its heartbeats have stopped and never revived the row.
        await Eventually.Until(() => a.Membership.CurrentView.Find(self)?.Status == SiloStatus.Dead, "the peer sees it Dead");
        await victim.StopAsync();
        Assert.Equal("Dead", await TestPostgres.StatusAsync(clusterId, self.Endpoint, self.Generation));
    }

    [Fact]
    public async Task A_crashed_silo_restarted_on_its_endpoint_joins_as_a_new_generation_and_the_old_stays_dead()
    {
        var clusterId = TestPostgres.NewClusterId("restart");
        await using var a = await TestSilo.StartAsync(clusterId, output, "a");
        var first = await TestSilo.StartAsync(clusterId, output, "b");
        var old = first.Self;
        await first.CrashAsync();
        await first.DisposeAsync();

        await using var second = await TestSilo.StartAsync(clusterId, output, "b-again", port: first.Port);

        Assert.Equal(old.Endpoint, second.Self.Endpoint);
        Assert.True(second.Self.Generation > old.Generation);
        Assert.Equal("Dead", await TestPostgres.StatusAsync(clusterId, old.Endpoint, old.Generation));
        await Eventually.Until(
            () => a.Membership.CurrentView.IsActive(second.Self) && a.Membership.CurrentView.Find(old)?.Status == SiloStatus.Dead,
            "the peer sees the new generation active and the old one dead");
    }

    [Fact]
    public async Task Rows_of_a_whole_crashed_cluster_do_not_block_a_new_silos_join()
    {
        var clusterId = TestPostgres.NewClusterId("crashed-cluster");
        var stale = Enumerable.Range(0, 3).Select(_ => $"http://127.0.0.1:{TestSilo.FreePort()}").ToArray();
        var freshButSilent = $"http://127.0.0.1:{TestSilo.FreePort()}";
        await TestPostgres.ExecuteAsync("INSERT INTO membership_version (cluster_id, version) VALUES ($1, 17)", clusterId);
        foreach (var endpoint in stale)
        {
            await TestPostgres.ExecuteAsync(
                """
                INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at)
                VALUES ($1, $2, 4, 'old', 'Active', now() - interval '2 hours', now() - interval '1 hour', now() - interval '2 hours')
                """,
                clusterId, endpoint);
        }

        // One died a moment ago: its heartbeat is still fresh, so the joiner must wait until it goes stale.
        await TestPostgres.ExecuteAsync(
            """
            INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at)
            VALUES ($1, $2, 1, 'just-died', 'Active', now() - interval '1 hour', now(), now() - interval '1 hour')
            """,
            clusterId, freshButSilent);

        await using var silo = await TestSilo.StartAsync(clusterId, output, "new");

        Assert.True(silo.Membership.IsActive);
        var view = silo.Membership.CurrentView;
        Assert.Equal([silo.Self], view.ActiveSilos);
        Assert.All(stale.Append(freshButSilent), endpoint => Assert.Equal(SiloStatus.Dead, Assert.Single(view.Silos, s => s.Address.Endpoint == endpoint).Status));
    }

    [Fact]
    public async Task A_silent_silo_with_a_fresh_heartbeat_makes_joining_fail_after_the_join_timeout_with_a_clear_error()
    {
        var clusterId = TestPostgres.NewClusterId("join-timeout");
        var silent = $"http://127.0.0.1:{TestSilo.FreePort()}";
        await TestPostgres.ExecuteAsync("INSERT INTO membership_version (cluster_id, version) VALUES ($1, 1)", clusterId);
        await TestPostgres.ExecuteAsync(
            """
            INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at)
            VALUES ($1, $2, 1, 'partitioned', 'Active', now(), now() + interval '1 hour', now())
            """,
            clusterId, silent);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TestSilo.StartAsync(clusterId, output, "blocked", options =>
        {
            TestSilo.Fast(options);
            options.JoinTimeout = TimeSpan.FromSeconds(3);
        }));

        output.WriteLine(error.Message);
        Assert.Contains(silent, error.Message, StringComparison.Ordinal);
        Assert.Contains("JoinTimeout", error.Message, StringComparison.Ordinal);
    }
}
