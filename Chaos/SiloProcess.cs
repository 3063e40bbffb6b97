using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace OrleansMeta.Chaos;

/// <summary>One silo as a real process (the test silo binary beside the runner) on fixed ports, so that it can be
/// killed with SIGKILL, paused with SIGSTOP and started again as a new generation at the same address. Its silo-to-silo
/// endpoints (advertised, listened on, the address it connects from) come with <c>settings</c>.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _arguments;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;
    private bool _disposed;

    private readonly StreamWriter _logFile;

    /// <param name="logDirectory">Every line the silo writes, in all its generations, goes to <c>name.log</c> there.</param>
    public SiloProcess(string name, int publicPort, IEnumerable<string> settings, string logDirectory)
    {
        Name = name;
        _logFile = new StreamWriter(Path.Combine(logDirectory, $"{name}.log"), append: true) { AutoFlush = true };
        PublicUrl = new Uri($"http://127.0.0.1:{publicPort}/");
        _arguments = [.. settings, $"--urls=http://127.0.0.1:{publicPort}", $"--Meta:Cluster:SiloName={name}"];
    }

    public string Name { get; }

    public Uri PublicUrl { get; }

    public bool IsRunning => _process is { HasExited: false };

    public bool IsPaused { get; private set; }

    /// <summary>The last lines the process wrote (for a failure report).</summary>
    public string Tail => string.Join('\n', _output.TakeLast(40));

    public void Start()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "OrleansMeta.TestSilo.dll"));
        foreach (var argument in _arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        IsPaused = false;
        Keep($"==== {DateTime.UtcNow:O} {Name} started (pid {process.Id})");
    }

    /// <summary>kill -9.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    /// <summary>SIGTERM and wait: the host's graceful shutdown (killed if it takes longer than 30 s).</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            Signal("-TERM");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
            }
        }
    }

    public void Pause()
    {
        Signal("-STOP");
        IsPaused = true;
    }

    public void Resume()
    {
        Signal("-CONT");
        IsPaused = false;
    }

    private void Signal(string signal)
    {
        if (_process is { HasExited: false } process)
        {
            Process.Start("kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        lock (_logFile)
        {
            // Output may still arrive while the runner disposes the silo.
            if (!_disposed)
            {
                _logFile.WriteLine(line);
            }
        }

        while (_output.Count > 500)
        {
            _output.TryDequeue(out _);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        lock (_logFile)
        {
            _disposed = true;
        }

        if (IsPaused)
        {
            Resume();
        }

        Kill();
        _process?.Dispose();
        lock (_logFile)
        {
            _logFile.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
