using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// PostgreSQL's own single-row UPDATE rate measured by pgbench (a separate process, like wrk): one autocommit UPDATE
/// of a random one of 1000 rows per transaction, prepared statements, per-transaction latencies logged for percentiles.
/// </summary>
public static partial class PgBench
{
    public const int Rows = 1000;

    public static string? Find() => Wrk.FindOnPath("pgbench")
        ?? (Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal)
                .Select(d => Path.Combine(d, "bin", "pgbench")).FirstOrDefault(File.Exists)
            : null);

    public static async Task<Measurement> RunUpdatesAsync(string connectionString, int clients, TimeSpan warmup, TimeSpan duration)
    {
        var pgbench = Find() ?? throw new InvalidOperationException("pgbench is missing (it ships with PostgreSQL's server package, /usr/lib/postgresql/*/bin).");
        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
        {
            await using var command = dataSource.CreateCommand(
                "CREATE TABLE IF NOT EXISTS bench_pgbench_row (id int PRIMARY KEY, value bigint NOT NULL); " +
                $"INSERT INTO bench_pgbench_row SELECT g, 0 FROM generate_series(1, {Rows}) g ON CONFLICT DO NOTHING;");
            await command.ExecuteNonQueryAsync();
        }

        var directory = Directory.CreateTempSubdirectory("orleans-meta-bench-pgbench.").FullName;
        try
        {
            var script = Path.Combine(directory, "update.sql");
            await File.WriteAllTextAsync(script, $"\\set id random(1, {Rows})\nUPDATE bench_pgbench_row SET value = value + 1 WHERE id = :id;\n");
            await RunAsync(pgbench, connectionString, clients, warmup, script, logPrefix: null);
            var output = await RunAsync(pgbench, connectionString, clients, duration, script, Path.Combine(directory, "log"));
            var processed = long.Parse(ProcessedPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
            var tps = double.Parse(TpsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);

            // Log lines: client_id transaction_no latency_us script_no epoch_s epoch_us.
            var latencies = new List<long>();
            foreach (var file in Directory.GetFiles(directory, "log.*"))
            {
                foreach (var line in await File.ReadAllLinesAsync(file))
                {
                    var fields = line.Split(' ');
                    if (fields.Length >= 3 && long.TryParse(fields[2], CultureInfo.InvariantCulture, out var latency))
                    {
                        latencies.Add(latency);
                    }
                }
            }

            latencies.Sort();
            double Percentile(double p) => latencies.Count == 0 ? double.NaN : latencies[(int)Math.Min(latencies.Count - 1, p * latencies.Count)];
            return new Measurement($"postgres: 1-row UPDATE of {Rows} rows [pgbench]", clients, processed,
                TimeSpan.FromSeconds(processed / tps), Percentile(0.50), Percentile(0.99));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<string> RunAsync(string pgbench, string connectionString, int clients, TimeSpan duration, string script, string? logPrefix)
    {
        var connection = new NpgsqlConnectionStringBuilder(connectionString);
        List<string> arguments =
        [
            "-n", "-M", "prepared", "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", "2",
            "-T", ((int)Math.Ceiling(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture), "-f", script,
            "-h", connection.Host ?? "127.0.0.1", "-p", connection.Port.ToString(CultureInfo.InvariantCulture),
            "-U", connection.Username ?? "postgres",
        ];
        if (logPrefix is not null)
        {
            arguments.AddRange(["-l", "--log-prefix", logPrefix]);
        }

        arguments.Add(connection.Database ?? "postgres");
        var start = new ProcessStartInfo(pgbench, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (connection.Password is { } password)
        {
            start.Environment["PGPASSWORD"] = password;
        }

        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0 || !TpsPattern().IsMatch(output))
        {
            throw new InvalidOperationException($"pgbench failed (exit code {process.ExitCode}):\n{output}\n{await errors}");
        }

        return output;
    }

    [GeneratedRegex(@"number of transactions actually processed: (\d+)")]
    private static partial Regex ProcessedPattern();

    [GeneratedRegex(@"tps = ([\d.]+) \(without initial connection time\)")]
    private static partial Regex TpsPattern();
}
