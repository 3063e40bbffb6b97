using System.Diagnostics;
using Npgsql;

namespace OrleansMeta.Chaos;

/// <summary>
/// A throwaway PostgreSQL server that the runner owns, so that it can restart it as a fault. initdb and postgres refuse
/// to run as root, so as root they run as the postgres user (as scripts/lib/postgres.sh does).
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _dir;

    private PostgresServer(string bin, string dir, int port)
    {
        _bin = bin;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString(int port) => $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=5;Command Timeout=15";

    private string Data => Path.Combine(_dir, "data");

    public static async Task<PostgresServer> StartAsync(int port, CancellationToken cancellationToken)
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (install the postgresql package).");
        }

        var dir = Directory.CreateTempSubdirectory("orleans-meta-chaos-pg-").FullName;
        var server = new PostgresServer(bin, dir, port);
        if (IsRoot)
        {
            await RunAsync("chown", ["-R", "postgres:", dir], cancellationToken);
        }

        await server.AsOwnerAsync("initdb", ["-D", server.Data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"], cancellationToken);
        await server.PgCtlAsync(["start", "-w", "-t", "60", "-l", Path.Combine(dir, "postgres.log"),
            "-o", $"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={dir} -c fsync=off -c max_connections=200"], cancellationToken);
        return server;
    }

    /// <summary>pg_ctl restart -m fast: every connection is cut, in-flight transactions roll back.</summary>
    public Task RestartAsync(CancellationToken cancellationToken)
        => PgCtlAsync(["restart", "-m", "fast", "-w", "-t", "60", "-l", Path.Combine(_dir, "postgres.log")], cancellationToken);

    public async Task<MetadataLog> ReadLogAsync(string clusterId, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(Port));
        await connection.OpenAsync(cancellationToken);
        long head = 0;
        await using (var command = new NpgsqlCommand("SELECT last_offset FROM metadata_log_head WHERE cluster_id = $1", connection))
        {
            command.Parameters.AddWithValue(clusterId);
            head = await command.ExecuteScalarAsync(cancellationToken) is long h ? h : 0;
        }

        var entries = new List<LogEntry>();
        await using (var command = new NpgsqlCommand("SELECT log_offset, type, key, payload FROM metadata_log WHERE cluster_id = $1 ORDER BY log_offset", connection))
        {
            command.Parameters.AddWithValue(clusterId);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                entries.Add(new LogEntry(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), (byte[])reader[3]));
            }
        }

        return MetadataLog.Replay(entries, head);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await PgCtlAsync(["stop", "-m", "immediate"], CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }

        Directory.Delete(_dir, recursive: true);
    }

    private static bool IsRoot => Environment.UserName == "root";

    private Task PgCtlAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
        => AsOwnerAsync("pg_ctl", ["-D", Data, .. arguments], cancellationToken);

    private Task AsOwnerAsync(string tool, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_bin, tool);
        return IsRoot ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments], cancellationToken) : RunAsync(path, arguments, cancellationToken);
    }

    private static async Task RunAsync(string file, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/tmp" };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', start.ArgumentList)} failed ({process.ExitCode}): {await output}{await error}");
        }
    }
}
