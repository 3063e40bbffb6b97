using System.Globalization;
using System.Runtime.InteropServices;
using OrleansMeta.Benchmarks;

// Usage: dotnet run -c Release --project Benchmarks -- [grain-calls] [state-writes] [remote-calls] [metadata-reads] [failover [--silos N,...] [--alloc-types]] [api-writes [--silos 1,3] [--to-owner]] [offsets] [group-commits [--sdk] [--silos N] [--group-partitions N] [--connections N]] [rebalance [--silos 1,3] [--shapes GxMxP,...]] [cold-start] [metadata-deltas [--partitions N,...]] [cold-start-log [--log-partitions N] [--log-changes N] [--log-tail N] [--skip-full-replay]] [group-listing [--groups N]] [watch-slow] [--postgres <connection string>] [--seconds N]
// scripts/bench.sh starts a throwaway PostgreSQL and passes it.
var arguments = args.ToList();
var seconds = ReadOption("--seconds") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 5;
var partitionCounts = (ReadOption("--partitions") ?? "1000,10000").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
var postgres = ReadOption("--postgres") ?? Environment.GetEnvironmentVariable("ORLEANS_META_BENCH_POSTGRES");
var groupCount = ReadOption("--groups") is { } g ? int.Parse(g, CultureInfo.InvariantCulture) : 10_000;
var logPartitions = ReadOption("--log-partitions") is { } lp ? int.Parse(lp, CultureInfo.InvariantCulture) : 1_000_000;
var logChanges = ReadOption("--log-changes") is { } lc ? long.Parse(lc, CultureInfo.InvariantCulture) : 10_000_000;
var logTail = ReadOption("--log-tail") is { } lt ? long.Parse(lt, CultureInfo.InvariantCulture) : 100_000;
var siloOption = ReadOption("--silos");
List<int> SiloCounts(string fallback) => (siloOption ?? fallback).Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
var skipFullReplay = arguments.Remove("--skip-full-replay");
var withSdk = arguments.Remove("--sdk");
var allocationTypes = arguments.Remove("--alloc-types");
var groupPartitions = ReadOption("--group-partitions") is { } gp ? int.Parse(gp, CultureInfo.InvariantCulture) : 10;
var groupConnections = ReadOption("--connections") is { } gc ? int.Parse(gc, CultureInfo.InvariantCulture) : 64;
var toOwner = arguments.Remove("--to-owner");
var shapesOption = ReadOption("--shapes");
var shapes = shapesOption ?? RebalanceScenario.DefaultShapes;
List<string> scenarios = arguments.Count > 0 ? [.. arguments] : ["grain-calls", "state-writes", "remote-calls", "metadata-reads", "failover"];
var duration = TimeSpan.FromSeconds(seconds);
var warmup = TimeSpan.FromSeconds(Math.Max(1, seconds / 5));

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
Console.WriteLine($"command: scripts/bench.sh {string.Join(' ', scenarios)}{(siloOption is null ? "" : $" --silos {siloOption}")}{(shapesOption is null ? "" : $" --shapes {shapesOption}")} --seconds {seconds}");
var results = new List<Measurement>();
var notes = new List<string>();
var failed = false;

foreach (var scenario in scenarios)
{
    switch (scenario)
    {
        case "grain-calls":
            results.AddRange(await GrainCallScenario.RunAsync(warmup, duration));
            break;
        case "state-writes":
            if (postgres is null)
            {
                Console.Error.WriteLine("state-writes needs PostgreSQL: pass --postgres \"Host=...;Username=...;Database=...\" or set ORLEANS_META_BENCH_POSTGRES (scripts/bench.sh does it for you).");
                return 2;
            }

            results.AddRange(await StateWriteScenario.RunAsync(postgres, warmup, duration));
            break;
        case "cold-start":
            if (postgres is null)
            {
                Console.Error.WriteLine("cold-start needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            notes.AddRange(await MetadataScenario.RunColdStartAsync(postgres, topics: partitionCounts.Count > 1 ? partitionCounts[1] : 10, partitionsPerTopic: partitionCounts[0]));
            break;
        case "cold-start-log":
            if (postgres is null)
            {
                Console.Error.WriteLine("cold-start-log needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            notes.AddRange(await ColdStartLogScenario.RunAsync(
                postgres,
                partitions: logPartitions, changes: logChanges, tail: logTail, skipFullReplay: skipFullReplay));
            break;
        case "metadata-reads" or "failover":
            if (postgres is null)
            {
                Console.Error.WriteLine($"{scenario} needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            if (scenario == "failover")
            {
                foreach (var silos in SiloCounts("1"))
                {
                    notes.AddRange(await MetadataScenario.RunFailoverAsync(postgres, partitionCounts, silos, allocationTypes));
                }
            }
            else
            {
                results.AddRange(await MetadataScenario.RunReadsAsync(postgres, warmup, duration));
            }

            break;
        case "metadata-deltas":
            if (postgres is null)
            {
                Console.Error.WriteLine("metadata-deltas needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            notes.AddRange(await MetadataDeltaScenario.RunAsync(postgres, partitionCounts));
            break;
        case "group-listing":
            if (postgres is null)
            {
                Console.Error.WriteLine("group-listing needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            notes.AddRange(await GroupListingScenario.RunAsync(postgres, groupCount));
            break;
        case "api-writes":
            if (postgres is null)
            {
                Console.Error.WriteLine("api-writes needs PostgreSQL: pass --postgres or use scripts/bench.sh (which also installs wrk and etcd-server).");
                return 2;
            }

            try
            {
                var writes = await ApiWriteScenario.RunAsync(postgres, SiloCounts("1,3"), toOwner, warmup, duration, allocationTypes);
                results.AddRange(writes.Results);
                notes.AddRange(writes.Notes);
                failed |= writes.Failed;
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            break;
        case "offsets":
            if (postgres is null)
            {
                Console.Error.WriteLine("offsets needs PostgreSQL: pass --postgres or use scripts/bench.sh (which also finds pgbench).");
                return 2;
            }

            try
            {
                var offsets = await OffsetCommitScenario.RunAsync(postgres, warmup, duration);
                results.AddRange(offsets.Results);
                notes.AddRange(offsets.Notes);
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            break;
        case "group-commits":
            if (postgres is null)
            {
                Console.Error.WriteLine("group-commits needs PostgreSQL: pass --postgres or use scripts/bench.sh (which also finds pgbench).");
                return 2;
            }

            try
            {
                var commits = await GroupCommitScenario.RunAsync(postgres, warmup, duration, withSdk, SiloCounts("3")[0], groupPartitions, groupConnections);
                results.AddRange(commits.Results);
                notes.AddRange(commits.Notes);
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            break;
        case "rebalance":
            if (postgres is null)
            {
                Console.Error.WriteLine("rebalance needs PostgreSQL: pass --postgres or use scripts/bench.sh (which also installs wrk and finds pgbench).");
                return 2;
            }

            try
            {
                var rebalance = await RebalanceScenario.RunAsync(postgres, SiloCounts("1,3"), shapes, warmup, duration);
                results.AddRange(rebalance.Results);
                notes.AddRange(rebalance.Notes);
                failed |= rebalance.Failed;
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            break;
        case "remote-calls":
            if (postgres is null)
            {
                Console.Error.WriteLine("remote-calls needs PostgreSQL for membership: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            results.AddRange(await RemoteCallScenario.RunAsync(postgres, warmup, duration));
            break;
        case "watch-slow":
            if (postgres is null)
            {
                Console.Error.WriteLine("watch-slow needs PostgreSQL: pass --postgres or use scripts/bench.sh.");
                return 2;
            }

            notes.AddRange(await WatchScenario.RunAsync(postgres, duration));
            break;
        default:
            Console.Error.WriteLine($"Unknown scenario '{scenario}'. Known: grain-calls, state-writes, remote-calls, metadata-reads, failover, api-writes, offsets, group-commits, rebalance (--silos 1,3, --shapes 100x10x12,...), cold-start (--partitions PER_TOPIC,TOPICS), cold-start-log, metadata-deltas, group-listing (--groups N), watch-slow.");
            return 2;
    }
}

Console.WriteLine();
Console.WriteLine($"{"scenario",-52} {"conc.",6} {"ops/s",12} {"p50 µs",10} {"p99 µs",10}");
foreach (var m in results)
{
    Console.WriteLine($"{m.Scenario,-52} {m.Concurrency,6} {m.PerSecond,12:N0} {m.P50Micros,10:N1} {m.P99Micros,10:N1}");
}

foreach (var note in notes)
{
    Console.WriteLine(note);
}

if (failed)
{
    Console.Error.WriteLine("Some answers were not 2xx (see the lines marked !!): the figures above are not a clean measurement.");
    return 1;
}

return 0;

string? ReadOption(string name)
{
    var index = arguments.IndexOf(name);
    if (index < 0 || index + 1 >= arguments.Count)
    {
        return null;
    }

    var value = arguments[index + 1];
    arguments.RemoveRange(index, 2);
    return value;
}
