using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Consumer-group membership and rebalances (issue 10) on one and three silos with PostgreSQL: for each shape (G groups
/// of M members over a topic of P partitions) every member joins at once, then one member of each group leaves (epoch
/// -1), then one new member of each group joins; each time, the time until every group is stable. Then steady
/// heartbeats of stable members (wrk in separate processes, and the SDK in this process). Next to PostgreSQL's
/// single-row UPDATE rate (pgbench, 64 clients) measured on the same server in the same run.
/// </summary>
/// <remarks>
/// <para>Members are driven through the SDK's <see cref="MetaClient.SendGroupHeartbeatAsync"/> (routed to each group's
/// coordinator, as <see cref="GroupConsumer"/> is), by a driver of this class rather than by <see cref="GroupConsumer"/>:
/// it sends the same requests (subscription on join, owned partitions on every heartbeat, at once after a revocation),
/// but it records every answer (epoch and assignment) in the group's <see cref="AssignmentHistory"/> before the member's
/// next heartbeat, bounds the heartbeats in flight (64, like the other scenarios' connections), and lets the benchmark
/// know when a group is stable. A member of a group that is not stable heartbeats again <see cref="Pause"/> after an
/// answer that revoked nothing (Kafka's default interval of 5 s would make every step where a member waits for another's
/// release last up to 5 s; the heartbeats per member it took are reported instead); members of stable groups are quiet
/// until the steady-heartbeat runs. The silos' session timeout is 10 minutes so that quiet members are not removed.</para>
/// <para>A group counts as stable when every member's last answer carries the same epoch and their assignments cover
/// the topic's partitions without overlap; after each phase every group's description must say <c>stable</c> and
/// match what its members were told.</para>
/// </remarks>
public static partial class RebalanceScenario
{
    private const int InFlight = 64;
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(100);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerOptions.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private sealed record Shape(string Name, int Groups, int Members, string Topic, int Partitions);

    /// <summary>The shapes measured unless <c>--shapes</c> names others: G groups x M members x P partitions.</summary>
    public const string DefaultShapes = "100x10x12,100x10x120,1x100x120";

    /// <summary>Reads <c>GxMxP,...</c>: G groups of M members over a topic of P partitions each.</summary>
    private static List<Shape> ParseShapes(string shapes) => [.. shapes.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(text =>
    {
        var parts = text.Split('x').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        if (parts.Length != 3 || parts.Any(p => p < 1) || parts[1] < 2)
        {
            throw new InvalidOperationException($"--shapes: '{text}' is not GROUPSxMEMBERSxPARTITIONS with at least 2 members (one leaves), e.g. 100x10x12.");
        }

        return new Shape($"{parts[0]}x{parts[1]}-p{parts[2]}", parts[0], parts[1], $"reb-p{parts[2]}", parts[2]);
    })];

    public static async Task<(List<Measurement> Results, List<string> Notes, bool Failed)> RunAsync(
        string connectionString, IReadOnlyList<int> siloCounts, string shapes, TimeSpan warmup, TimeSpan duration)
    {
        var parsed = ParseShapes(shapes);
        if (!Wrk.IsAvailable)
        {
            throw new InvalidOperationException("rebalance needs wrk (apt-get install wrk; scripts/bench.sh installs it when run as root).");
        }

        if (PgBench.Find() is null)
        {
            throw new InvalidOperationException("rebalance needs pgbench for its reference (PostgreSQL's server package ships it).");
        }

        var run = new ApiWriteScenario.Run();
        var reference = await PgBench.RunUpdatesAsync(connectionString, InFlight, warmup, duration);
        run.Results.Add(reference);
        run.Notes.Add($"reference: pgbench, {InFlight} clients, single-row UPDATE: {reference.PerSecond:N0}/s, p50 {reference.P50Micros / 1000:0.0} ms, p99 {reference.P99Micros / 1000:0.0} ms; load average {LoadAverage()}");
        foreach (var silos in siloCounts)
        {
            await RunClusterAsync(connectionString, silos, parsed, reference, warmup, duration, run);
        }

        return (run.Results, run.Notes, run.Failed);
    }

    private static async Task RunClusterAsync(string connectionString, int siloCount, List<Shape> shapes, Measurement reference, TimeSpan warmup, TimeSpan duration, ApiWriteScenario.Run run)
    {
        var clusterId = $"bench-{Guid.NewGuid():N}"[..20];
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        var silos = new List<MetadataScenario.BenchSilo>();
        using var heartbeats = new CancellationTokenSource();
        List<Task> loops = [];
        MetaClient? client = null;
        try
        {
            for (var i = 0; i < siloCount; i++)
            {
                silos.Add(await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(9), clusterId, secret,
                    ["--Meta:Groups:SessionTimeout=00:10:00"]));
            }

            var services = silos[0].App.Services;
            var grains = services.GetRequiredService<IGrainFactory>();
            var image = services.GetRequiredService<MetadataImageService>();
            var log = services.GetRequiredService<IMetadataLog>();
            loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, heartbeats.Token);
            await UntilAsync(() => Enumerable.Range(1, 3).All(id => image.Current.Brokers.TryGetValue(id, out var b) && b.IsActive), "brokers 1 to 3 are unfenced");
            foreach (var (topic, partitions) in shapes.Select(s => (s.Topic, s.Partitions)).Append(("reb-p12", 12)).Append(("reb-p120", 120)).Distinct())
            {
                await grains.GetGrain<ITopicGrain>(TopicKeys.For(topic)).CreateAsync(new CreateTopic(topic, partitions, 3, null, null));
            }

            var head = await log.GetHeadAsync(CancellationToken.None);
            foreach (var silo in silos)
            {
                await silo.App.Services.GetRequiredService<MetadataImageService>().WaitForAsync(head, TimeSpan.FromMinutes(1));
            }

            client = new MetaClient(new MetaClientOptions { BootstrapUrls = [.. silos.Select(s => s.Address)], RequestTimeout = TimeSpan.FromMinutes(2) });
            var cluster = new BenchCluster(silos, client, siloCount == 1 ? "1 silo" : $"{siloCount} silos", run);

            // Small shapes first, not measured, until the JIT is quiet: on two shared cores the tier-up of the join,
            // reconciliation and write paths takes tens of seconds, and its compiling would be counted in every figure.
            var warmStarted = Stopwatch.StartNew();
            var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
            while (warmStarted.Elapsed < TimeSpan.FromSeconds(90))
            {
                var slice = Stopwatch.StartNew();
                var jit = System.Runtime.JitInfo.GetCompilationTime();
                await RunShapeAsync(cluster, new Shape("warm-a", 20, 10, "reb-p12", 12), image, measured: false);
                await RunShapeAsync(cluster, new Shape("warm-b", 1, 50, "reb-p120", 120), image, measured: false);
                if (System.Runtime.JitInfo.GetCompilationTime() - jit < slice.Elapsed * 0.02)
                {
                    break;
                }
            }

            Console.Error.WriteLine($"rebalance: {DateTime.UtcNow:HH:mm:ss} warm-up done");
            run.Notes.Add($"  {cluster.Where}: warm-up {warmStarted.Elapsed.TotalSeconds:0} s, {(System.Runtime.JitInfo.GetCompilationTime() - jitBefore).TotalSeconds:0.0} s of it compiling");

            var all = new List<BenchGroup>();
            foreach (var shape in shapes)
            {
                all.AddRange(await RunShapeAsync(cluster, shape, image, measured: true));
            }

            await RunSteadyHeartbeatsAsync(cluster, all, warmup, duration);
            var transitions = cluster.Transitions;
            if (transitions.Count > 0)
            {
                run.Notes.Add($"  {cluster.Where}: group writes (joins, leaves, assignment steps) reached {transitions.Max():N0}/s in a phase = " +
                    $"{transitions.Max() / reference.PerSecond:0.00}× pgbench's {InFlight}-client single-row UPDATE rate ({reference.PerSecond:N0}/s)");
            }
        }
        finally
        {
            client?.Dispose();
            await heartbeats.CancelAsync();
            await Task.WhenAll(loops);
            foreach (var silo in Enumerable.Reverse(silos))
            {
                await silo.DisposeAsync();
            }
        }
    }

    /// <summary>Joins every member of <paramref name="shape"/>'s groups at once, then one member of each group leaves, then
    /// one joins; each phase runs until every group is stable.</summary>
    private static async Task<List<BenchGroup>> RunShapeAsync(BenchCluster cluster, Shape shape, MetadataImageService image, bool measured)
    {
        var topicId = image.Current.Topics[shape.Topic].Topic.TopicId;
        var prefix = $"r{cluster.Silos.Count}-{shape.Name}-{Guid.NewGuid():N}"[..24];
        var groups = Enumerable.Range(0, shape.Groups).Select(g => new BenchGroup($"{prefix}-{g}", shape.Topic, topicId, shape.Partitions)).ToList();
        foreach (var group in groups)
        {
            for (var m = 0; m < shape.Members; m++)
            {
                group.Members.Add(new BenchMember(group, Guid.NewGuid().ToString()));
            }
        }

        var label = $"{cluster.Where}, {shape.Groups} group{(shape.Groups == 1 ? "" : "s")} × {shape.Members} members, {shape.Partitions} partitions";
        await RunPhaseAsync(cluster, groups, $"join: {label}", measured, groups.SelectMany(g => g.Members).ToList(), JoinAsync);
        await RunPhaseAsync(cluster, groups, $"one member of each group leaves: {label}", measured,
            groups.Select(g => g.Members[^1]).ToList(), LeaveAsync);
        var newcomers = groups.Select(g =>
        {
            var member = new BenchMember(g, Guid.NewGuid().ToString());
            g.Members.Add(member);
            return member;
        }).ToList();
        await RunPhaseAsync(cluster, groups, $"one member joins each group: {label}", measured, newcomers, JoinAsync);
        if (measured)
        {
            // Every group write stores the whole group (members, assignments and targets), whichever member moved.
            var silo = cluster.Silos[0];
            await using var dataSource = Npgsql.NpgsqlDataSource.Create(silo.ConnectionString);
            await using var command = dataSource.CreateCommand(
                "SELECT avg(octet_length(payload))::bigint, avg(pg_column_size(payload))::bigint FROM grain_state WHERE cluster_id = $1 AND grain_type = 'group' AND grain_key LIKE $2");
            command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = silo.ClusterId });
            command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = prefix + "-%" });
            await using var reader = await command.ExecuteReaderAsync();
            if (await reader.ReadAsync() && !reader.IsDBNull(0))
            {
                cluster.Run.Notes.Add($"  {label}: each group's state row holds {reader.GetInt64(0):N0} bytes of JSON ({reader.GetInt64(1):N0} bytes stored, compressed), written whole by every group write");
            }
        }

        return groups;
    }

    /// <summary>
    /// Sends <paramref name="kick"/> for each of <paramref name="kicked"/> (<see cref="InFlight"/> at a time), then drives
    /// every member of every group until all groups are stable; reports the kicks' rate and latency, the time to stable
    /// (overall, and per group), heartbeats, group writes and this process's CPU.
    /// </summary>
    private static async Task RunPhaseAsync(
        BenchCluster cluster, List<BenchGroup> groups, string what, bool measured, List<BenchMember> kicked, Func<BenchCluster, BenchMember, Task> kick)
    {
        foreach (var group in groups)
        {
            group.Unsettle();
        }

        // The process's CPU while no member heartbeats (timers, broker sessions, membership): it counts in every
        // phase's CPU, and weighs most in phases of few writes per second.
        var idle = 0.0;
        if (measured)
        {
            var idleCpuBefore = Environment.CpuUsage.TotalTime;
            await Task.Delay(TimeSpan.FromSeconds(1));
            idle = (Environment.CpuUsage.TotalTime - idleCpuBefore).TotalSeconds;
            Console.Error.WriteLine($"rebalance: {DateTime.UtcNow:HH:mm:ss} {what}");
        }

        var storage = cluster.Storage;
        var (writes, records, transactions) = (storage.Sum(s => s.Writes), storage.Sum(s => s.RecordsAppended), storage.Sum(s => s.Transactions));
        var forwardedBefore = cluster.Forwarded();
        var heartbeatsBefore = cluster.Heartbeats;
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
        var load = LoadAverage();
        var started = Stopwatch.StartNew();
        var latencies = new long[kicked.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, kicked.Count), new ParallelOptions { MaxDegreeOfParallelism = InFlight }, async (i, _) =>
        {
            var begin = Stopwatch.GetTimestamp();
            await kick(cluster, kicked[i]);
            latencies[i] = Stopwatch.GetTimestamp() - begin;
        });
        var kicksDone = started.Elapsed;

        // Every member of every group heartbeats until its group is stable.
        using var abandon = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await Task.WhenAll(groups.SelectMany(g => g.Members.Where(m => !m.Left)).Select(m => DriveAsync(cluster, m, started, abandon.Token)));
        var stable = started.Elapsed;
        var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
        var compiling = System.Runtime.JitInfo.GetCompilationTime() - jitBefore;
        var (writesDone, recordsDone, transactionsDone) = (storage.Sum(s => s.Writes) - writes, storage.Sum(s => s.RecordsAppended) - records, storage.Sum(s => s.Transactions) - transactions);
        var heartbeatsSent = cluster.Heartbeats - heartbeatsBefore;
        var forwarded = cluster.Forwarded() - forwardedBefore;

        var unsettled = groups.Count(g => !g.IsStable);
        var problems = await VerifyAsync(cluster, groups);
        if (!measured)
        {
            if (problems.Count > 0 || unsettled > 0)
            {
                cluster.Run.Notes.Add($"  !! warm-up ({what}): {unsettled} groups not stable; {string.Join("; ", problems.Take(5))}");
            }

            return;
        }

        Array.Sort(latencies);
        double Micros(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
        cluster.Run.Results.Add(new Measurement($"{what}: sent", InFlight, kicked.Count, kicksDone, Micros(latencies[latencies.Length / 2]), Micros(latencies[Math.Min(latencies.Length - 1, (int)(latencies.Length * 0.99))])));
        var perGroup = groups.Select(g => g.StableAfter.TotalMilliseconds).Order().ToList();
        var members = groups.Sum(g => g.Members.Count(m => !m.Left));
        var seconds = stable.TotalSeconds;
        cluster.Transitions.Add(writesDone / seconds);
        cluster.Run.Notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"{what} (load average {load}): {kicked.Count:N0} sent in {kicksDone.TotalMilliseconds:N0} ms = {kicked.Count / kicksDone.TotalSeconds:N0}/s " +
            $"(p50 {Micros(latencies[latencies.Length / 2]) / 1000:0.0} ms, p99 {Micros(latencies[Math.Min(latencies.Length - 1, (int)(latencies.Length * 0.99))]) / 1000:0.0} ms); " +
            $"every group stable after {stable.TotalMilliseconds:N0} ms (per group: p50 {perGroup[perGroup.Count / 2]:N0} ms, p99 {perGroup[Math.Min(perGroup.Count - 1, (int)(perGroup.Count * 0.99))]:N0} ms); " +
            $"{heartbeatsSent:N0} heartbeats = {heartbeatsSent / (double)members:0.0} per member, {heartbeatsSent / seconds:N0}/s, {forwarded / (double)Math.Max(1, heartbeatsSent):P0} forwarded; " +
            $"{writesDone:N0} group writes = {writesDone / seconds:N0}/s ({writesDone / (double)Math.Max(1, kicked.Count):0.0} per {(what.StartsWith("one member of", StringComparison.Ordinal) ? "leave" : "join")}), " +
            $"{recordsDone:N0} log records, {writesDone / (double)Math.Max(1, transactionsDone):0.0} writes per transaction; " +
            $"process CPU {cpu.TotalSeconds / seconds:0.00} cores = {cpu.TotalMicroseconds / Math.Max(1, writesDone):N0} µs per group write, " +
            $"{cpu.TotalMicroseconds / Math.Max(1, heartbeatsSent):N0} µs per heartbeat (silos and the SDK driver together; {idle:0.00} cores when idle just before); JIT compiling {compiling.TotalMilliseconds:N0} ms"));
        var violations = groups.Sum(g => g.History.Violations.Count);
        var observations = groups.Sum(g => g.History.Observations);
        cluster.Run.Notes.Add($"  ownership history: {observations:N0} answers checked, {violations} partitions owned by two members (at one time or in one epoch); " +
            $"descriptions checked: {groups.Count - problems.Count} of {groups.Count} stable and as the members were told");
        if (violations > 0 || problems.Count > 0 || unsettled > 0 || cluster.Errors.Count > 0)
        {
            cluster.Run.Fail($"  !! {what}: {unsettled} groups not stable; {string.Join("; ", groups.SelectMany(g => g.History.Violations).Concat(problems).Concat(cluster.Errors).Take(5))}");
        }
    }

    private static async Task JoinAsync(BenchCluster cluster, BenchMember member)
    {
        var request = new GroupHeartbeatRequest(member.MemberId, 0, ClientId: "orleans-meta-bench", SubscribedTopicNames: [member.Group.Topic], OwnedPartitions: []);
        var response = await cluster.Client.SendGroupHeartbeatAsync(member.Group.Id, request);
        Interlocked.Increment(ref cluster.HeartbeatCount);
        member.Apply(response);
    }

    private static async Task LeaveAsync(BenchCluster cluster, BenchMember member)
    {
        // The member gives up everything before it says so: from here it owns nothing.
        member.Leave();
        await cluster.Client.SendGroupHeartbeatAsync(member.Group.Id, new GroupHeartbeatRequest(member.MemberId, -1));
        Interlocked.Increment(ref cluster.HeartbeatCount);
    }

    /// <summary>A member's heartbeats until its group is stable: at once after an answer that revoked something (the
    /// heartbeat acknowledges it), else after <see cref="Pause"/>.</summary>
    private static async Task DriveAsync(BenchCluster cluster, BenchMember member, Stopwatch phase, CancellationToken abandon)
    {
        var group = member.Group;
        while (!group.IsStable && !abandon.IsCancellationRequested)
        {
            bool revoked;
            await cluster.Slots.WaitAsync(abandon);
            try
            {
                if (group.IsStable)
                {
                    return;
                }

                var response = await cluster.Client.SendGroupHeartbeatAsync(group.Id, member.Heartbeat(), abandon);
                Interlocked.Increment(ref cluster.HeartbeatCount);
                revoked = member.Apply(response);
            }
            catch (MetaApiException exception)
            {
                cluster.Error($"{group.Id}/{member.MemberId}: {exception.Code} {exception.Message}");
                revoked = false;
            }
            catch (OperationCanceledException) when (abandon.IsCancellationRequested)
            {
                return;
            }
            finally
            {
                cluster.Slots.Release();
            }

            if (group.TrySettle(phase.Elapsed))
            {
                return;
            }

            if (!revoked)
            {
                await Task.Delay(Pause, CancellationToken.None);
            }
        }
    }

    /// <summary>Every group's description must say stable, with the epochs and partitions its members were told.</summary>
    private static async Task<List<string>> VerifyAsync(BenchCluster cluster, List<BenchGroup> groups)
    {
        var problems = new List<string>();
        foreach (var group in groups)
        {
            var description = await cluster.Client.DescribeGroupAsync(group.Id);
            var told = group.Members.Where(m => !m.Left).ToDictionary(m => m.MemberId, StringComparer.Ordinal);
            if (description.State != "stable" || description.Members.Count != told.Count)
            {
                problems.Add($"group {group.Id} is {description.State} with {description.Members.Count} members (expected stable with {told.Count})");
                continue;
            }

            foreach (var member in description.Members)
            {
                var partitions = member.Assignment.SelectMany(t => t.Partitions).Order().ToList();
                if (!told.TryGetValue(member.MemberId, out var mine) || mine.Epoch != member.MemberEpoch || !partitions.SequenceEqual(mine.Owned.Order()))
                {
                    problems.Add($"group {group.Id}: member {member.MemberId} is at epoch {member.MemberEpoch} with [{string.Join(',', partitions)}], " +
                        $"but was told {mine?.Epoch} [{string.Join(',', mine?.Owned.Order() ?? Enumerable.Empty<int>())}]");
                    break;
                }
            }
        }

        return problems;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static Task UntilAsync(Func<bool> condition, string what) => GroupCommitScenario.UntilAsync(condition, what);
}
