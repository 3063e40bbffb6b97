using System.Diagnostics;
using System.Net;
using Xunit.Abstractions;

namespace OrleansMeta.Silo.Tests;

/// <summary>The silo as users start it: the real binary, in development mode, as a separate process.</summary>
public sealed class SiloProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_development_silo_answers_ready_within_seconds_of_start()
    {
        var port = Ports.Free();
        var siloDll = Path.Combine(AppContext.BaseDirectory, "OrleansMeta.Silo.dll");
        var start = new ProcessStartInfo("dotnet", [siloDll, $"--urls=http://127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        var console = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { console.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { console.Enqueue(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(2) };
            var watch = Stopwatch.StartNew();
            await Eventually.Until(async () => process.HasExited
                ? throw new InvalidOperationException("The silo exited: " + string.Join('\n', console))
                : (await http.GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK,
                "the development silo answers ready", TimeSpan.FromSeconds(30));

            output.WriteLine($"ready after {watch.Elapsed.TotalSeconds:0.0} s");
            Assert.Contains(console, line => line.Contains($"listening on http://127.0.0.1:{port}", StringComparison.Ordinal) && line.Contains("in-memory storage", StringComparison.Ordinal));
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
