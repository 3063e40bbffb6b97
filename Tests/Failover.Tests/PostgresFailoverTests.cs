using System.Globalization;
using Xunit.Abstractions;

namespace OrleansMeta.Failover.Tests;

/// <summary>
/// The PostgreSQL primary dies under load (kill -9) and its streaming replica is promoted: silos find the new primary
/// through the multi-host connection string, and with synchronous replication no acknowledged write is lost.
/// </summary>
/// <remarks>
/// scripts/pg-failover.sh runs this test to measure: ORLEANS_META_FAILOVER_MODE=async measures asynchronous
/// replication (losses are reported, not refused), ORLEANS_META_FAILOVER_LAG_MS makes the replica lag that far behind
/// (it streams through a link that holds each byte that long), ORLEANS_META_FAILOVER_ACKS sets how many writes are
/// acknowledged before the kill (300), ORLEANS_META_FAILOVER_REPORT names a file the figures are
/// appended to. In every mode what is lost must be the end of the log only, silos that applied lost records stop and are
/// restarted, and afterwards every silo's image equals the promoted server's log.
/// </remarks>
public sealed class PostgresFailoverTests(ITestOutputHelper output)
{
    /// <summary>Generous on a 2-core machine shared with other work; measured figures are in BENCHMARKS.md.</summary>
    private static readonly TimeSpan ServiceBackWithin = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_primary_crash_loses_no_acknowledged_write_with_synchronous_replication()
    {
        var synchronous = Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_MODE") != "async";
        var silos = int.Parse(Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_SILOS") ?? "2", CultureInfo.InvariantCulture);
        var writers = int.Parse(Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_WRITERS") ?? "4", CultureInfo.InvariantCulture);

        var acksBeforeKill = int.Parse(Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_ACKS") ?? "300", CultureInfo.InvariantCulture);
        var lag = TimeSpan.FromMilliseconds(int.Parse(Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_LAG_MS") ?? "0", CultureInfo.InvariantCulture));

        var report = await FailoverRun.RunAsync(synchronous, silos, writers, acksBeforeKill, acksAfterKillPerWriter: 20, lag);

        output.WriteLine(report.ToString());
        if (Environment.GetEnvironmentVariable("ORLEANS_META_FAILOVER_REPORT") is { Length: > 0 } file)
        {
            await File.AppendAllTextAsync(file, report + Environment.NewLine);
        }

        Assert.True(report.AcknowledgedBeforeKill >= acksBeforeKill, report.ToString());
        Assert.True(report.WithoutService < ServiceBackWithin, report.ToString());
        Assert.True(report.Violations.Count == 0, report.ToString());
        if (synchronous)
        {
            Assert.True(report.Lost == 0, report.ToString());
            Assert.True(report.RewrittenLogStops == 0, report.ToString());
        }
    }
}
