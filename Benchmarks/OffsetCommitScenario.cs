using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Durable offset commits through <see cref="PostgresOffsetStore"/> (silo-fenced, as in production) from 1000 groups of
/// 10 partitions each, next to PostgreSQL's own single-row update rate measured by pgbench on the same server in the
/// same run. Each committer owns a disjoint set of groups (only a group's owner commits for it, one call at a time)
/// and commits either one partition per call (a consumer committing after each poll of one partition) or all ten.
/// </summary>
public static class OffsetCommitScenario
{
    private const int Groups = 1000;
    private const int PartitionsPerGroup = 10;
    private const int PgBenchClients = 64;

    public static async Task<(List<Measurement> Results, List<string> Notes)> RunAsync(string connectionString, TimeSpan warmup, TimeSpan duration)
    {
        var results = new List<Measurement>();
        var notes = new List<string>();
        if (PgBench.Find() is null)
        {
            throw new InvalidOperationException("offsets needs pgbench for its reference (PostgreSQL's server package ships it; scripts/bench.sh installs it).");
        }

        var clusterId = $"bench-{Guid.NewGuid():N}";
        var silo = new SiloAddress("http://127.0.0.1:1", 1);
        await using var dataSource = PostgresStorageServiceCollectionExtensions.DataSource(connectionString); // as a silo's
        await new SchemaMigrator(dataSource).MigrateAsync();
        var postmaster = await PostmasterAsync(dataSource);

        results.Add(await PgBench.RunUpdatesAsync(connectionString, 1, warmup, duration));
        var pgbenchCpuBefore = ServerCpu(postmaster);
        var reference = await PgBench.RunUpdatesAsync(connectionString, PgBenchClients, warmup, duration);
        results.Add(reference);
        notes.Add($"pgbench {PgBenchClients} clients: {(ServerCpu(postmaster) - pgbenchCpuBefore).TotalMicroseconds / (reference.Operations * (1 + warmup / duration)):0} µs " +
            "of PostgreSQL CPU per update (warm-up included, counted as if at the measured rate)");
        await using (var insert = dataSource.CreateCommand(
            "INSERT INTO membership (cluster_id, endpoint, generation, name, status, started_at, heartbeat_at, status_changed_at) " +
            "VALUES ($1, $2, $3, 'bench', 'Active', now(), now(), now())"))
        {
            insert.Parameters.AddWithValue(clusterId);
            insert.Parameters.AddWithValue(silo.Endpoint);
            insert.Parameters.AddWithValue(silo.Generation);
            await insert.ExecuteNonQueryAsync();
        }

        await using var store = new PostgresOffsetStore(dataSource, Options.Create(new PostgresStorageOptions { ClusterId = clusterId }), writer: new FixedWriter(silo));
        var topic = Guid.NewGuid();
        foreach (var partitionsPerCall in new[] { 1, PartitionsPerGroup })
        {
            foreach (var committers in new[] { 64, 256, Groups })
            {
                var batchesBefore = store.Statistics.Batches;
                var callsBefore = store.Statistics.Calls;
                var rowsBefore = store.Statistics.Rows;
                var benchCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var serverCpuBefore = ServerCpu(postmaster);
                var measurement = await LoadRunner.RunAsync("offset commit", committers, warmup, duration, (worker, n) =>
                {
                    // Worker w owns groups w, w + committers, ... and walks through them and their partitions.
                    var owned = (Groups - worker + committers - 1) / committers;
                    var group = worker + (int)(n % owned) * committers;
                    var first = (int)(n / owned % PartitionsPerGroup);
                    var commits = new OffsetCommit[partitionsPerCall];
                    for (var i = 0; i < partitionsPerCall; i++)
                    {
                        var partition = (first + i) % PartitionsPerGroup;
                        commits[i] = new OffsetCommit(topic, "bench-topic", partition, n, 7, null);
                    }

                    return store.CommitAsync($"group-{group}", commits, CancellationToken.None);
                });
                var batches = store.Statistics.Batches - batchesBefore;
                var calls = store.Statistics.Calls - callsBefore;
                var rows = store.Statistics.Rows - rowsBefore;

                // Warm-up included on both sides: CPU per call, of this process (store and load generator) and of
                // the PostgreSQL server (every process under its postmaster).
                var benchCpu = (Process.GetCurrentProcess().TotalProcessorTime - benchCpuBefore).TotalMicroseconds / Math.Max(1, calls);
                var serverCpu = (ServerCpu(postmaster) - serverCpuBefore).TotalMicroseconds / Math.Max(1, calls);
                results.Add(measurement with
                {
                    Scenario = $"offset commit, {partitionsPerCall} partition{(partitionsPerCall == 1 ? "" : "s")}/call " +
                        $"({calls / Math.Max(1.0, batches):0} calls, {rows / Math.Max(1.0, batches):0} rows/txn)",
                });
                notes.Add($"offset commit, {partitionsPerCall} partition(s)/call, {committers} committers: {measurement.PerSecond:N0} calls/s = " +
                    $"{measurement.PerSecond * partitionsPerCall:N0} partitions/s = {measurement.PerSecond / reference.PerSecond:0.0}× pgbench's " +
                    $"{PgBenchClients}-client single-row UPDATE rate ({reference.PerSecond:N0}/s); p99 {measurement.P99Micros / 1000:0.0} ms; " +
                    $"CPU per call: {benchCpu:0} µs in this process, {serverCpu:0} µs in PostgreSQL");
            }
        }

        var statistics = store.Statistics;
        notes.Add($"offset log: {statistics.Rows:N0} entries appended in {statistics.Batches:N0} transactions, {statistics.Compactions:N0} group compactions; " +
            $"table and index {await LogSizeAsync(dataSource) / (1024.0 * 1024):0.0} MiB after the runs");
        await store.DisposeAsync();
        return (results, notes);
    }

    private static async Task<long> LogSizeAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT pg_total_relation_size('consumer_offset_log')");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The pid of the server's postmaster: the parent of this session's backend.</summary>
    private static async Task<int> PostmasterAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT pg_backend_pid()");
        var backend = (int)(await command.ExecuteScalarAsync())!;
        return ReadStat(backend) is { } stat ? stat.ParentId : 0;
    }

    /// <summary>User and system CPU of the PostgreSQL server so far: the postmaster, its live children and those it
    /// has reaped.</summary>
    private static TimeSpan ServerCpu(int postmaster)
    {
        long ticks = 0;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) &&
                ReadStat(pid) is { } stat && (stat.ParentId == postmaster || pid == postmaster))
            {
                // The postmaster's own figure includes its children that have exited (pgbench's sessions).
                ticks += stat.CpuTicks + (pid == postmaster ? stat.ExitedChildrenTicks : 0);
            }
        }

        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux.
    }

    private static (int ParentId, long CpuTicks, long ExitedChildrenTicks)? ReadStat(int pid)
    {
        try
        {
            // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
            // state ppid ... utime (14th field overall) stime (15th) cutime (16th) cstime (17th).
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return (int.Parse(fields[1], CultureInfo.InvariantCulture),
                long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture),
                long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private sealed class FixedWriter(SiloAddress silo) : IWriterFence
    {
        public SiloAddress? Writer => silo;
    }
}
