using System.Diagnostics;
using OrleansMeta.Membership.Tests.Infrastructure;
using OrleansMeta.Runtime.Cluster;
using Xunit.Abstractions;

namespace OrleansMeta.Membership.Tests;

/// <summary>Crashed silos are found by probes and votes, judged on the database's clock only.</summary>
public sealed class FailureDetectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_crashed_silo_is_declared_dead_in_every_view()
    {
        var clusterId = TestPostgres.NewClusterId("crash");
        await using var a = await TestSilo.StartAsync(clusterId, output, "a");
        await using var b = await TestSilo.StartAsync(clusterId, output, "b");
        await using var victim = await TestSilo.StartAsync(clusterId, output, "victim");
        await Eventually.Until(() => new[] { a, b }.All(s => s.Membership.CurrentView.ActiveSilos.Count == 3), "all three are active everywhere");

        var elapsed = await CrashAndWaitAsync(victim, a, b);

        output.WriteLine($"Crashed silo declared dead in every view after {elapsed.TotalMilliseconds:0} ms (fast test settings).");
        var dead = a.Membership.CurrentView.Find(victim.Self)!;
        Assert.Equal(2, dead.Suspicions.Count);
        Assert.Equal(new[] { a.Self, b.Self }.Order(), dead.Suspicions.Select(v => v.Voter).Order());
    }

    [Fact]
    public async Task With_default_settings_a_crashed_silo_is_declared_dead_in_every_view_within_ten_seconds()
    {
        var clusterId = TestPostgres.NewClusterId("crash-defaults");
        static void Defaults(MembershipOptions options)
        {
        }

        await using var a = await TestSilo.StartAsync(clusterId, output, "a", Defaults);
        await using var b = await TestSilo.StartAsync(clusterId, output, "b", Defaults);
        await using var victim = await TestSilo.StartAsync(clusterId, output, "victim", Defaults);
        await Eventually.Until(() => new[] { a, b }.All(s => s.Membership.CurrentView.ActiveSilos.Count == 3), "all three are active everywhere");

        var elapsed = await CrashAndWaitAsync(victim, a, b);

        output.WriteLine($"Crashed silo declared dead in every view after {elapsed.TotalMilliseconds:0} ms with default settings.");
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"Detection took {elapsed}; the target is under 10 s.");
    }

    [Fact]
    public async Task In_a_two_silo_cluster_a_crashed_silo_is_declared_dead_once_its_heartbeat_is_stale()
    {
        var clusterId = TestPostgres.NewClusterId("crash-pair");
        await using var a = await TestSilo.StartAsync(clusterId, output, "a");
        await using var victim = await TestSilo.StartAsync(clusterId, output, "victim");
        await Eventually.Until(() => a.Membership.CurrentView.ActiveSilos.Count == 2, "both are active");

        var elapsed = await CrashAndWaitAsync(victim, a);

        output.WriteLine($"Declared dead after {elapsed.TotalMilliseconds:0} ms.");
        Assert.Equal([a.Self], a.Membership.CurrentView.ActiveSilos);
    }

    [Fact]
    public async Task Silo_clocks_far_off_do_not_matter()
    {
        // Nothing in membership reads a silo's wall clock for liveness: heartbeats, votes and their expiry are all
        // stamped and compared by the database. Two silos a day apart still join, agree and detect a crash.
        var clusterId = TestPostgres.NewClusterId("skew");
        await using var ahead = await TestSilo.StartAsync(clusterId, output, "ahead", timeProvider: new OffsetTimeProvider(TimeSpan.FromDays(1)));
        await using var behind = await TestSilo.StartAsync(clusterId, output, "behind", timeProvider: new OffsetTimeProvider(-TimeSpan.FromDays(1)));
        await using var victim = await TestSilo.StartAsync(clusterId, output, "victim", timeProvider: new OffsetTimeProvider(TimeSpan.FromHours(7)));
        await Eventually.Until(() => new[] { ahead, behind }.All(s => s.Membership.CurrentView.ActiveSilos.Count == 3), "all three are active everywhere");

        var elapsed = await CrashAndWaitAsync(victim, ahead, behind);

        output.WriteLine($"Declared dead after {elapsed.TotalMilliseconds:0} ms with skewed silo clocks.");
        var view = ahead.Membership.CurrentView;
        Assert.All(view.Find(victim.Self)!.Suspicions, vote => Assert.True((view.ReadAt - vote.At).Duration() < TimeSpan.FromMinutes(1), "votes carry the database's time"));
        Assert.True((view.ReadAt - DateTimeOffset.UtcNow).Duration() < TimeSpan.FromMinutes(1), "ReadAt is the database's clock");
    }

    private static async Task<TimeSpan> CrashAndWaitAsync(TestSilo victim, params TestSilo[] survivors)
    {
        var self = victim.Self;
        var watch = Stopwatch.StartNew();
        await victim.CrashAsync();
        await Eventually.Until(
            () => survivors.All(s => s.Membership.CurrentView.Find(self)?.Status == SiloStatus.Dead && s.Membership.IsActive),
            "every survivor's view has the crashed silo Dead");
        return watch.Elapsed;
    }
}
