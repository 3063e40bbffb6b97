using System.Collections.Concurrent;
using System.Diagnostics;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>A silo in its own operating-system process (the test silo binary), so that a test can kill -9 it.</summary>
public sealed class ProcessSilo : SiloHandle
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output;

    private ProcessSilo(string name, int publicPort, int siloPort, Process process, ConcurrentQueue<string> output)
        : base(name, publicPort, siloPort)
    {
        _process = process;
        _output = output;
    }

    public override bool IsRunning => !_process.HasExited;

    public string Output => string.Join('\n', _output);

    public static ProcessSilo Start(string name, IEnumerable<string> arguments, int? publicPort = null, int? siloPort = null)
    {
        var publicP = publicPort ?? Ports.Free();
        var siloP = siloPort ?? Ports.Free();
        var dll = Path.Combine(AppContext.BaseDirectory, "OrleansMeta.TestSilo.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments.Concat([
                     $"--urls=http://127.0.0.1:{publicP}",
                     $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{siloP}",
                     $"--Meta:Cluster:SiloName={name}",
                 ]))
        {
            start.ArgumentList.Add(argument);
        }

        var output = new ConcurrentQueue<string>();
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Keep(output, e.Data);
        process.ErrorDataReceived += (_, e) => Keep(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ProcessSilo(name, publicP, siloP, process, output);
    }

    /// <summary>kill -9: no graceful leave, no flush, no goodbye.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>SIGSTOP: the process freezes as in a long GC pause or a stopped VM; its sockets stay open.</summary>
    public void Pause() => Signal("-STOP");

    /// <summary>SIGCONT: the paused process carries on where it stopped, unaware of the time that passed.</summary>
    public void Resume() => Signal("-CONT");

    /// <summary>Waits for the process to end by itself (for example after reading itself dead).</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancellation.Token);
    }

    private void Signal(string signal)
    {
        if (!_process.HasExited)
        {
            Process.Start("kill", [signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        }
    }

    public override async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM: the host's graceful shutdown.
            Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(timeout.Token);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        await base.DisposeAsync();
    }

    private static void Keep(ConcurrentQueue<string> output, string? line)
    {
        if (line is null)
        {
            return;
        }

        output.Enqueue(line);
        while (output.Count > 2000)
        {
            output.TryDequeue(out _);
        }
    }
}
