using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace OrleansMeta.Failover.Tests;

/// <summary>The real silo binary (OrleansMeta.Silo.dll) in its own process, configured as in production.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private SiloProcess(Process process, int port, int siloPort)
    {
        _process = process;
        Port = port;
        SiloPort = siloPort;
        BaseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }

    /// <summary>The public API's port.</summary>
    public int Port { get; }

    /// <summary>The silo-to-silo port.</summary>
    public int SiloPort { get; }

    /// <summary>True once the process has ended (it stopped itself, or crashed).</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The last lines the silo wrote, for failure messages.</summary>
    public string Output => string.Join('\n', _output);

    public static SiloProcess Start(string connectionString, string clusterId, string secret)
        => Start(connectionString, clusterId, secret, Ports.Free(), Ports.Free());

    /// <summary>A silo on given ports: a supervisor restarting a silo that stopped uses the ports it had.</summary>
    public static SiloProcess Start(string connectionString, string clusterId, string secret, int port, int siloPort)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var argument in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "OrleansMeta.Silo.dll"),
                     $"--urls=http://127.0.0.1:{port}",
                     $"--ConnectionStrings:Postgres={connectionString}",
                     $"--Meta:ClusterId={clusterId}",
                     $"--Meta:Cluster:ClusterSecret={secret}",
                     $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{siloPort}",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        return new SiloProcess(Process.Start(start)!, port, siloPort);
    }

    /// <summary>Completes once the process has ended and all its output has been read.</summary>
    public Task WaitForExitAsync(CancellationToken cancellationToken = default) => _process.WaitForExitAsync(cancellationToken);

    /// <summary>The exit code once <see cref="HasExited"/>.</summary>
    public int ExitCode => _process.ExitCode;

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > 300)
        {
            _output.TryDequeue(out _);
        }
    }
}
