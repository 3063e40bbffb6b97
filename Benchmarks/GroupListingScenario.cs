using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Listing every consumer group with its lag at 10k groups and 1M committed offsets, on two silos: how long the silos
/// take to load the groups they own, the memory each committed offset costs, and the time of <c>GET /v1/groups</c>
/// next to PostgreSQL returning every group's stored offsets (packed rows, one per group here) in the same run.
/// </summary>
public static class GroupListingScenario
{
    private const int Topics = 100;
    private const int PartitionsPerTopic = 100;
    private const int Listings = 10;

    public static async Task<IReadOnlyList<string>> RunAsync(string connectionString, int groups)
    {
        var notes = new List<string>();
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        await using var first = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(30), secretOrNull: secret);
        var clusterId = first.ClusterId;
        var second = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(30), clusterId, secret);
        await UntilAsync(() => Active(first) && Active(second) && first.App.Services.GetRequiredService<IClusterMembership>().CurrentView.ActiveSilos.Count == 2, "two silos active");
        var grains = first.App.Services.GetRequiredService<IGrainFactory>();
        var image = first.App.Services.GetRequiredService<MetadataImageService>();
        using var alive = new CancellationTokenSource();
        var loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, alive.Token);
        long offset = 0;
        for (var t = 0; t < Topics; t++)
        {
            offset = (await grains.GetGrain<ITopicGrain>(TopicName(t)).CreateAsync(new CreateTopic(TopicName(t), PartitionsPerTopic, 3, null, null))).MetadataOffset;
        }

        await image.WaitForAsync(offset, TimeSpan.FromMinutes(2));
        var baseline = Memory();

        // 1M offsets written straight into the store's tables (the commit path is measured by the offsets scenario).
        var insert = Stopwatch.StartNew();
        var topics = image.Current.Topics.Values.Where(t => t.Topic.Name.StartsWith("lag-", StringComparison.Ordinal)).OrderBy(t => t.Topic.Name, StringComparer.Ordinal).ToList();
        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
        {
            // One rewritten row per group, as the store leaves a group after a compaction, in the layout of
            // OffsetLogEncoding (the store's own encoder is internal to it).
            await using var command = dataSource.CreateCommand(
                """
                INSERT INTO consumer_offset_log (cluster_id, group_id, entries)
                SELECT $1, 'bench-' || lpad(g::text, 6, '0'),
                       '\x0101'::bytea || int2send(1::int2) || uuid_send(t.id) || int2send(octet_length(convert_to(t.name, 'UTF8'))::int2)
                       || convert_to(t.name, 'UTF8') || int4send($5)
                       || (SELECT string_agg(int2send(0::int2) || int4send(p) || int8send(g * 10 + p) || int4send(-1) || int4send(-1)
                                             || int8send(0) || int8send((extract(epoch FROM now()) * 1000000)::bigint), ''::bytea ORDER BY p)
                           FROM generate_series(0, $5 - 1) AS p)
                FROM generate_series(0, $4 - 1) AS g
                JOIN unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS t(id, name, ord) ON (g % cardinality($2::uuid[])) + 1 = t.ord
                """);
            command.CommandTimeout = 600;
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
            command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = [.. topics.Select(t => t.Topic.TopicId)] });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. topics.Select(t => t.Topic.Name)] });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = groups });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = PartitionsPerTopic });
            await command.ExecuteNonQueryAsync();
        }

        var offsets = (long)groups * PartitionsPerTopic;
        notes.Add($"group listing: {groups} groups x {PartitionsPerTopic} partitions = {offsets} committed offsets inserted in {insert.Elapsed.TotalSeconds:0.0} s");

        // Every leader reports its partitions' log offsets through the API, one request per broker.
        using var http = new HttpClient { BaseAddress = first.Address, Timeout = TimeSpan.FromMinutes(2) };
        var report = Stopwatch.StartNew();
        var accepted = await ReportLogOffsetsAsync(http, image.Current, topics);

        notes.Add($"group listing: {accepted} partitions' log offsets reported by 3 brokers through the API (and passed to the other silo) in {report.Elapsed.TotalMilliseconds:0} ms");

        // A third silo replaces the second: both remaining silos load the groups they own (the first on the view change).
        await second.DisposeAsync();
        var load = Stopwatch.StartNew();
        await using var third = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(30), clusterId, secret);
        await UntilAsync(() => Directory(first).Count + Directory(third).Count >= groups, $"{groups} groups loaded", TimeSpan.FromMinutes(10));
        var loaded = load.Elapsed;
        var memory = Memory() - baseline;
        notes.Add($"group listing: both silos loaded their groups ({Directory(first).Count} + {Directory(third).Count}) {loaded.TotalSeconds:0.0} s after the view changed " +
            $"(includes the new silo's start); managed memory grew {memory / 1048576.0:0} MiB = {memory / (double)offsets:0} bytes per committed offset (both silos, GC heap after a full collection)");

        // What the loaded groups cost while nothing happens to them (offset-only groups stay active for listings): the
        // process's CPU and thread-pool work items over a quiet stretch, both silos and the brokers' heartbeat loops
        // included. It starts after a settling pause: right after the load, the tiered JIT recompiling the load's hot
        // methods was most of the process's CPU (perf: 89% of the samples on its thread).
        await Task.Delay(TimeSpan.FromSeconds(10));
        Console.WriteLine($"group listing: quiet stretch starts, 10 s (process {Environment.ProcessId}; attach a trace now to see what an idle silo runs)");
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var itemsBefore = ThreadPool.CompletedWorkItemCount;
        var quiet = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(10));
        var quietSeconds = quiet.Elapsed.TotalSeconds;
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"group listing: over {quietSeconds:0} quiet seconds with {groups} groups active (2 silos, 3 brokers heartbeating): process CPU " +
            $"{(Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds / quietSeconds:0.000} cores, {(ThreadPool.CompletedWorkItemCount - itemsBefore) / quietSeconds:N0} thread-pool work items/s"));

        // Lag needs the new silo's copy of the log offsets: report once more, as brokers do every few seconds.
        await ReportLogOffsetsAsync(http, image.Current, topics);

        var times = new List<double>();
        GroupsResponse? listed = null;
        long bytes = 0;
        for (var i = 0; i < Listings; i++)
        {
            var watch = Stopwatch.StartNew();
            var body = await http.GetByteArrayAsync("/v1/groups");
            times.Add(watch.Elapsed.TotalMilliseconds);
            bytes = body.Length;
            listed = System.Text.Json.JsonSerializer.Deserialize<GroupsResponse>(body, System.Text.Json.JsonSerializerOptions.Web);
        }

        if (listed is null || listed.Groups.Count != groups || listed.UnreachableSilos.Count > 0
            || listed.Groups.Any(g => g.CommittedPartitions != PartitionsPerTopic || g.PartitionsWithoutLag != 0))
        {
            throw new InvalidOperationException($"GET /v1/groups listed {listed?.Groups.Count} groups (expected {groups}), unreachable: {string.Join(", ", listed?.UnreachableSilos ?? [])}, " +
                $"{listed?.Groups.Count(g => g.PartitionsWithoutLag != 0)} with unknown lag.");
        }

        times.Sort();
        var reference = await PostgresSummaryAsync(connectionString, clusterId);
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"group listing: GET /v1/groups ({groups} groups with total lag over {offsets} offsets, {bytes / 1024} KiB, 2 silos) p50 {times[times.Count / 2]:0} ms, " +
            $"min {times[0]:0} ms, max {times[^1]:0} ms over {Listings}; reference: PostgreSQL returning every group's stored offsets (their packed rows, not decoded) " +
            $"p50 {reference[reference.Count / 2]:0} ms, min {reference[0]:0} ms"));
        await alive.CancelAsync();
        await Task.WhenAll(loops).ContinueWith(_ => { }, TaskScheduler.Default);
        return notes;
    }

    /// <summary>Each broker reports the log offsets of the partitions it leads through the API; answers how many were taken.</summary>
    private static async Task<int> ReportLogOffsetsAsync(HttpClient http, MetadataImage metadata, List<TopicImage> topics)
    {
        var accepted = 0;
        foreach (var broker in metadata.Brokers.Values)
        {
            var led = topics.Select(t => new TopicLogOffsets(t.Topic.Name,
                [.. t.Partitions.Where(p => p.Leader == broker.Record.BrokerId).Select(p => new PartitionLogOffsets(p.Partition, 0, 1_000_000))])).ToList();
            using var response = await http.PutAsJsonAsync($"/v1/brokers/{broker.Record.BrokerId}/log-offsets", new LogOffsetsReport(broker.Record.BrokerEpoch, led));
            response.EnsureSuccessStatusCode();
            accepted += (await response.Content.ReadFromJsonAsync<LogOffsetsReportResponse>())!.Accepted;
        }

        return accepted;
    }

    private static async Task<List<double>> PostgresSummaryAsync(string connectionString, string clusterId)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var times = new List<double>();
        for (var i = 0; i < Listings; i++)
        {
            await using var command = dataSource.CreateCommand(
                """
                SELECT o.group_id, o.entries
                FROM consumer_offset_log AS o
                WHERE o.cluster_id = $1 ORDER BY o.group_id, o.seq
                """);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
            var watch = Stopwatch.StartNew();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
            }

            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        return times;
    }

    private static string TopicName(int t) => $"lag-{t:D3}";

    private static bool Active(MetadataScenario.BenchSilo silo) => silo.App.Services.GetRequiredService<IClusterMembership>().IsActive;

    private static GroupDirectory Directory(MetadataScenario.BenchSilo silo) => silo.App.Services.GetRequiredService<GroupDirectory>();

    private static long Memory()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? within = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > (within ?? TimeSpan.FromMinutes(1)))
            {
                throw new TimeoutException($"Timed out waiting for: {what}.");
            }

            await Task.Delay(50);
        }
    }
}
