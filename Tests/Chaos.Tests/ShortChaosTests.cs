using Xunit.Abstractions;

namespace OrleansMeta.Chaos.Tests;

/// <summary>The short chaos run CI does on every build: a fixed seed, two minutes of load and faults (every fault
/// kind at least once), then the checker. The long form runs by hand: scripts/chaos.sh --minutes 10 --seed N.</summary>
public sealed class ShortChaosTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_chaos_run_with_a_fixed_seed_has_no_violations()
    {
        var report = await new ChaosRunner(new ChaosOptions
        {
            Seed = 8,
            Duration = TimeSpan.FromSeconds(120),
            FreePort = Ports.Free,
            Log = output.WriteLine,
        }).RunAsync();

        output.WriteLine(report.ToString());
        // Every kind comes up once before any repeats, so this many injected faults (not counting the supervisor's
        // restarts listed after them) covers every kind.
        var injected = report.Faults.Count(f => !f.Contains("then:", StringComparison.Ordinal));
        Assert.True(injected >= FaultSchedule.KindCount, $"only {injected} faults were injected, fewer than the {FaultSchedule.KindCount} kinds:\n{report}");
        Assert.All(report.Invariants, i => Assert.True(i.Checked > 0 || i.Name == "reads-saw-their-writes", $"{i.Name} checked nothing:\n{report}"));
        Assert.True(report.Violations.Count == 0, report.ToString());
    }
}
