using System.Diagnostics;

namespace OrleansMeta.Failover.Tests;

/// <summary>
/// A PostgreSQL primary and a streaming replica of this test's own (not the suite's shared server), started and
/// driven by scripts/pg-ha.sh so that tests and the measurement script run the very same set-up.
/// </summary>
public sealed class PostgresPair : IAsyncDisposable
{
    private readonly string _script;
    private readonly string _directory;

    private PostgresPair(string script, string directory, int primaryPort, int replicaPort, string connectionString)
    {
        _script = script;
        _directory = directory;
        PrimaryPort = primaryPort;
        ReplicaPort = replicaPort;
        ConnectionString = connectionString;
    }

    public int PrimaryPort { get; }

    public int ReplicaPort { get; }

    /// <summary>The multi-host connection string silos use: both servers, read-write sessions only.</summary>
    public string ConnectionString { get; }

    /// <summary>A connection string to the replica alone, for checks after its promotion.</summary>
    public string ReplicaOnly => $"Host=127.0.0.1;Port={ReplicaPort};Username=postgres;Pooling=false";

    public static async Task<PostgresPair> StartAsync(bool synchronous)
    {
        var script = Path.Combine(RepositoryRoot(), "scripts", "pg-ha.sh");
        // Under /tmp rather than the test's temp folder: the postgres user must be able to reach the data directories.
        var directory = Path.Combine("/tmp", $"orleans-meta-failover-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48]);
        var output = await RunAsync(script, "start", directory, synchronous ? "--sync" : "--async");
        var values = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1]);
        return new PostgresPair(script, directory, int.Parse(values["primary_port"]), int.Parse(values["replica_port"]), values["connection"]);
    }

    /// <summary>A connection string to the primary alone (for reading its WAL position before it is killed).</summary>
    public string PrimaryOnly => $"Host=127.0.0.1;Port={PrimaryPort};Username=postgres;Pooling=false";

    /// <summary>Streams the replica from 127.0.0.1:<paramref name="port"/> (a proxy in front of the primary) instead
    /// of from the primary directly; returns once it streams from there (and, if synchronous, counts as the synchronous
    /// standby again).</summary>
    public Task RelayReplicaThroughAsync(int port) => RunAsync(_script, "relay", _directory, port.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>kill -9 of the primary's postmaster and its processes, as when its machine dies.</summary>
    public Task KillPrimaryAsync() => RunAsync(_script, "kill-primary", _directory);

    /// <summary>pg_ctl promote of the replica; returns once it accepts writes.</summary>
    public Task PromoteReplicaAsync() => RunAsync(_script, "promote", _directory);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsync(_script, "stop", _directory);
        }
        finally
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Orleans.Meta.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Orleans.Meta.sln above {AppContext.BaseDirectory}.");
    }

    private static async Task<string> RunAsync(string script, params string[] arguments)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg-ha.sh {string.Join(' ', arguments)} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }
}
