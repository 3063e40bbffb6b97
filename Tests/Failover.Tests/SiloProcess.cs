using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace OrleansMeta.Failover.Tests;

/// <summary>The real silo binary (OrleansMeta.Silo.dll) in its own process, configured as in production.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private SiloProcess(Process process, int port)
    {
        _process = process;
        BaseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }

    /// <summary>The last lines the silo wrote, for failure messages.</summary>
    public string Output => string.Join('\n', _output);

    public static SiloProcess Start(string connectionString, string clusterId, string secret)
    {
        var port = Ports.Free();
        var siloPort = Ports.Free();
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

        return new SiloProcess(Process.Start(start)!, port);
    }

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
