using System.Globalization;
using Npgsql;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// The CPU time a local PostgreSQL server has used: its postmaster's and every process it started (backends, WAL
/// writer, checkpointer), read from /proc. The benchmarks run their own server on this machine, so the difference over
/// a run is what the run cost the database, next to the silos' own CPU. A backend that exits during a run takes its
/// time with it; the silos' pools keep theirs open.
/// </summary>
public sealed class PgServerCpu
{
    /// <summary>Clock ticks per second in /proc's times (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    private readonly int _postmaster;

    private PgServerCpu(int postmaster) => _postmaster = postmaster;

    /// <summary>The server behind <paramref name="connectionString"/>, or null when its processes cannot be read here (another machine, no /proc).</summary>
    public static async Task<PgServerCpu?> FindAsync(string connectionString)
    {
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await using var command = dataSource.CreateCommand("SHOW data_directory");
            var directory = (string?)await command.ExecuteScalarAsync();
            var pidFile = Path.Combine(directory ?? "", "postmaster.pid");
            if (!File.Exists(pidFile) || !Directory.Exists("/proc"))
            {
                return null;
            }

            var pid = int.Parse((await File.ReadAllLinesAsync(pidFile))[0].Trim(), CultureInfo.InvariantCulture);
            return new PgServerCpu(pid);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>The server's processes' user and system time so far.</summary>
    public TimeSpan Total()
    {
        long ticks = 0;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (IOException)
            {
                continue; // exited meanwhile
            }

            // After "pid (comm) ": state, ppid, ... utime (14th field of the line), stime (15th).
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
            if (pid == _postmaster || parent == _postmaster)
            {
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
        }

        return TimeSpan.FromSeconds(ticks / TicksPerSecond);
    }
}
