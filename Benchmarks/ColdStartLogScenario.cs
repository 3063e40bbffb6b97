using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Cold start with a long history (issue 11): a log holding the creation of <c>partitions</c> partitions (topics of
/// 1000) and <c>changes</c> partition changes, generated straight into <c>metadata_log</c> by PostgreSQL in the format
/// the grains write; then the time for a new silo to hold the full image and answer metadata, first with no snapshot
/// (full replay), then from a snapshot written by that silo followed by a tail of <c>tail</c> more changes.
/// </summary>
internal static class ColdStartLogScenario
{
    private const int PartitionsPerTopic = 1000;
    private const int Brokers = 3;
    private const int GenerateChunk = 1_000_000;

    public static async Task<IReadOnlyList<string>> RunAsync(string connectionString, int partitions, long changes, long tail, bool skipFullReplay)
    {
        var clusterId = $"cold-{Guid.NewGuid():N}"[..20];
        var secret = $"{Guid.NewGuid():N}{Guid.NewGuid():N}";
        var topics = Math.Max(1, partitions / PartitionsPerTopic);
        partitions = topics * PartitionsPerTopic;
        var lines = new List<string>();
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await new SchemaMigrator(dataSource).MigrateAsync();

        var generate = Stopwatch.StartNew();
        var head = await GenerateAsync(dataSource, clusterId, topics, changes);
        var size = await ScalarAsync<string>(dataSource, "SELECT pg_size_pretty(pg_total_relation_size('metadata_log'))");
        lines.Add($"cold start, long history: generated {head:N0} records ({partitions:N0} partitions in {topics:N0} topics created, {changes:N0} partition changes) " +
                  $"in {generate.Elapsed.TotalSeconds:0} s; metadata_log is {size}");
        Console.WriteLine(lines[^1]);

        // No silo here writes snapshots on its own (loading them is always on). The first silo replays the whole log
        // (no snapshot exists yet), is measured, and then writes the snapshot the second silo starts from.
        string[] noWriter = ["--Meta:Snapshots:Enabled=false"];
        {
            var start = Stopwatch.StartNew();
            await using var first = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromHours(1), clusterId, secret, noWriter);
            var (caughtUp, served, full) = await MeasureAsync(first, head, start);
            lines.Add($"  without a snapshot (replaying {head:N0} records): image caught up {caughtUp.TotalSeconds:0.0} s after start, " +
                      $"one topic's metadata served at {served.TotalSeconds:0.0} s, the full {full.Mib:0} MiB metadata answer at {full.At.TotalSeconds:0.0} s " +
                      $"({head / caughtUp.TotalSeconds:N0} records/s)");
            Console.WriteLine(lines[^1]);

            var write = Stopwatch.StartNew();
            var offset = await first.App.Services.GetRequiredService<MetadataSnapshotWriter>().WriteSnapshotAsync();
            var written = write.Elapsed;
            var length = await ScalarAsync<long>(dataSource, $"SELECT length FROM metadata_snapshot WHERE cluster_id = '{clusterId}' AND snapshot_offset = {offset}");
            lines.Add($"  snapshot at offset {offset:N0}: {length / 1024.0 / 1024.0:0.0} MiB (format {MetadataImageSnapshot.FormatVersion}), serialized and stored in {written.TotalSeconds:0.0} s");
            Console.WriteLine(lines[^1]);
        }

        // The silo appended its controller record: the tail goes after the real head.
        head = await ScalarAsync<long>(dataSource, $"SELECT last_offset FROM metadata_log_head WHERE cluster_id = '{clusterId}'");
        var tailStart = Stopwatch.StartNew();
        var newHead = tail > 0 ? await AppendChangesAsync(dataSource, clusterId, topics, head, tail, firstChange: changes) : head;
        Console.WriteLine($"  appended a tail of {tail:N0} changes in {tailStart.Elapsed.TotalSeconds:0} s");

        var withStart = Stopwatch.StartNew();
        await using var second = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromHours(1), clusterId, secret, noWriter);
        var (withCaughtUp, withServed, withFull) = await MeasureAsync(second, newHead, withStart);
        var loadedFrom = second.App.Services.GetRequiredService<MetadataImageService>().SnapshotOffset;
        lines.Add($"  with the snapshot (loaded: {loadedFrom:N0}) and a tail of {tail:N0} records: image caught up {withCaughtUp.TotalSeconds:0.0} s after start, " +
                  $"one topic's metadata served at {withServed.TotalSeconds:0.0} s, the full {withFull.Mib:0} MiB metadata answer at {withFull.At.TotalSeconds:0.0} s");
        Console.WriteLine(lines[^1]);

        await ExecuteAsync(dataSource, $"DELETE FROM metadata_snapshot WHERE cluster_id = '{clusterId}'");
        await ExecuteAsync(dataSource, $"DELETE FROM metadata_log WHERE cluster_id = '{clusterId}'");
        return lines;
    }

    private static async Task<(TimeSpan CaughtUp, TimeSpan Served, (double Mib, TimeSpan At) Full)> MeasureAsync(
        MetadataScenario.BenchSilo silo, long head, Stopwatch start)
    {
        var image = silo.App.Services.GetRequiredService<MetadataImageService>();
        await image.WaitForAsync(head, TimeSpan.FromHours(1));
        var caughtUp = start.Elapsed;
        using var http = new HttpClient { BaseAddress = silo.Address, Timeout = TimeSpan.FromMinutes(10) };
        await http.GetByteArrayAsync($"/v1/metadata?topics=t-0&minOffset={head}");
        var served = start.Elapsed;
        var full = await http.GetByteArrayAsync($"/v1/metadata?minOffset={head}");
        return (caughtUp, served, (full.Length / 1024.0 / 1024.0, start.Elapsed));
    }

    /// <summary>Brokers 1..3 registered and unfenced, the topics created, then the changes; returns the head.</summary>
    private static async Task<long> GenerateAsync(NpgsqlDataSource dataSource, string clusterId, int topics, long changes)
    {
        await ExecuteAsync(dataSource, $$"""
            INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload)
            SELECT '{{clusterId}}', b, 'broker', b::text, convert_to(
                '{"brokerId":' || b || ',"incarnationId":"' || md5('{{clusterId}}-b' || b)::uuid || '","brokerEpoch":0,' ||
                '"listeners":[{"name":"PLAINTEXT","host":"b' || b || '.bench","port":9092,"securityProtocol":"PLAINTEXT"}],' ||
                '"rack":null,"state":"unfenced","registrationOffset":0,"change":"registered","stateVersion":1}', 'UTF8')
            FROM generate_series(1, {{Brokers}}) AS b
            """);
        await ExecuteAsync(dataSource, $$"""
            INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload)
            SELECT '{{clusterId}}', {{Brokers}} + 1 + t, 'topic', 't-' || t, convert_to(
                '{"name":"t-' || t || '","topicId":"' || md5('{{clusterId}}-t' || t)::uuid || '","replicationFactor":3,"configs":{},"initialPartitions":[' ||
                (SELECT string_agg({{State("t", "p", "0")}}, ',' ORDER BY p) FROM generate_series(0, {{PartitionsPerTopic - 1}}) AS p) ||
                '],"deleted":false,"change":"created"}', 'UTF8')
            FROM generate_series(0, {{topics - 1}}) AS t
            """);
        long head = Brokers + topics;
        head = await AppendChangesAsync(dataSource, clusterId, topics, head, changes, firstChange: 0);
        return head;
    }

    /// <summary>Appends <paramref name="count"/> leader changes (numbered from <paramref name="firstChange"/>) after <paramref name="head"/>, going round every partition
    /// in turn (each round moves every leader to the next replica and bumps both epochs), and moves the head and the
    /// durable frontier past them, as committed appends do.</summary>
    private static async Task<long> AppendChangesAsync(NpgsqlDataSource dataSource, string clusterId, int topics, long head, long count, long firstChange)
    {
        long partitions = (long)topics * PartitionsPerTopic;
        for (long done = 0; done < count; done += GenerateChunk)
        {
            var chunk = Math.Min(GenerateChunk, count - done);
            var chunkStart = Stopwatch.StartNew();
            // k counts changes from the first round; g is the partition it changes, r its round.
            await ExecuteAsync(dataSource, $$"""
                SET synchronous_commit = off;
                INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload)
                SELECT '{{clusterId}}', {{head}} + 1 + i, 'partition', replace(id::text, '-', '') || '/' || p, convert_to(
                    '{"topicId":"' || id || '","topic":"t-' || t || '","state":' || {{State("t", "p", "r")}} ||
                    ',"change":"leader-elected","controllerEpoch":1}', 'UTF8')
                FROM (SELECT i, t, p, r, md5('{{clusterId}}-t' || t)::uuid AS id
                      FROM (SELECT i, (g / {{PartitionsPerTopic}})::int AS t, (g % {{PartitionsPerTopic}})::int AS p, r
                            FROM (SELECT i, (k % {{partitions}}) AS g, 1 + k / {{partitions}} AS r
                                  FROM (SELECT i, i + {{firstChange}} AS k FROM generate_series({{done}}::bigint, {{done + chunk - 1}}::bigint) AS i) AS ks) AS gs) AS ts) AS rows;
                """);
            Console.WriteLine($"  generated changes {done + 1:N0}..{done + chunk:N0} in {chunkStart.Elapsed.TotalSeconds:0.0} s");
        }

        var last = head + count;
        await ExecuteAsync(dataSource, $$"""
            INSERT INTO metadata_log_head (cluster_id, last_offset) VALUES ('{{clusterId}}', {{last}})
                ON CONFLICT (cluster_id) DO UPDATE SET last_offset = excluded.last_offset;
            INSERT INTO metadata_log_durable (cluster_id, writer, durable_offset) VALUES ('{{clusterId}}', 'bench-generator', {{last}})
                ON CONFLICT (cluster_id, writer) DO UPDATE SET durable_offset = excluded.durable_offset;
            ANALYZE metadata_log;
            """);
        return last;
    }

    /// <summary>SQL for a partition state's JSON: replicas start at broker ((t + p) mod 3) + 1; in round r the leader is
    /// the replica r mod 3 and both epochs are r (round 0: the initial state).</summary>
    private static string State(string t, string p, string r)
    {
        string Replica(int i) => $"((({t} + {p} + {i}) % {Brokers}) + 1)";
        return $"'{{\"partition\":' || {p} || ',\"replicas\":[' || {Replica(0)} || ',' || {Replica(1)} || ',' || {Replica(2)} || " +
               $"'],\"isr\":[' || {Replica(0)} || ',' || {Replica(1)} || ',' || {Replica(2)} || " +
               $"'],\"leader\":' || ((({t} + {p} + {r}) % {Brokers}) + 1) || ',\"leaderEpoch\":' || {r} || ',\"partitionEpoch\":' || {r} || '}}'";
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
