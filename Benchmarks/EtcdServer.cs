using System.Diagnostics;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// A throwaway single-member etcd (Debian's etcd-server) on loopback with its default durability (it fsyncs its WAL
/// on every commit), in a data directory that is deleted when it stops. Its JSON gateway serves /v3/kv/put.
/// </summary>
public sealed class EtcdServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private EtcdServer(Process process, string directory, Uri address)
    {
        _process = process;
        _directory = directory;
        Address = address;
    }

    public Uri Address { get; }

    public static bool IsAvailable => Wrk.FindOnPath("etcd") is not null;

    public static async Task<EtcdServer> StartAsync()
    {
        if (!IsAvailable)
        {
            throw new InvalidOperationException("etcd is not on PATH: install Debian's etcd-server (scripts/bench.sh does it when run as root).");
        }

        var directory = Directory.CreateTempSubdirectory("orleans-meta-bench-etcd.").FullName;
        var client = $"http://127.0.0.1:{MetadataScenario.FreePort()}";
        var peer = $"http://127.0.0.1:{MetadataScenario.FreePort()}";
        var start = new ProcessStartInfo("etcd",
        [
            "--name", "bench", "--data-dir", Path.Combine(directory, "data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", $"bench={peer}",
            "--logger", "zap", "--log-outputs", Path.Combine(directory, "etcd.log"), "--log-level", "warn",
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var server = new EtcdServer(process, directory, new Uri(client));

        // Ctrl-C and SIGTERM end the benchmark without running its finally blocks: stop etcd and remove its data then too.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        Console.CancelKeyPress += (_, _) => server.Stop();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var answer = await http.PostAsync(new Uri(server.Address, "/v3/kv/put"),
                    new StringContent("""{"key":"YmVuY2gvcmVhZHk=","value":"MQ=="}""", System.Text.Encoding.UTF8, "application/json"));
                if (answer.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(20))
            {
                var log = File.Exists(Path.Combine(directory, "etcd.log")) ? await File.ReadAllTextAsync(Path.Combine(directory, "etcd.log")) : "";
                await server.DisposeAsync();
                throw new InvalidOperationException($"etcd did not start answering puts within 20 s:\n{log}");
            }

            await Task.Delay(100);
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    private void Stop()
    {
        lock (_process)
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill();
                    _process.WaitForExit();
                }
            }
            catch (InvalidOperationException)
            {
                // Already stopped and disposed.
            }

            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }
        }
    }
}
