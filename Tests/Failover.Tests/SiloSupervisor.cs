using System.Diagnostics;
using System.Globalization;

namespace OrleansMeta.Failover.Tests;

/// <summary>
/// Silo processes kept running as a process supervisor (systemd, Kubernetes) keeps them: a silo that stops is started
/// again on the ports it had. A silo stops itself when it finds the metadata log rewritten under its image (committed
/// records lost, as when an asynchronous replica is promoted), and restarting it is the recovery.
/// </summary>
public sealed class SiloSupervisor : IAsyncDisposable
{
    /// <summary>What MetadataImageService logs when the log no longer holds a record the silo applied.</summary>
    public const string RewrittenLogMessage = "no longer holds record";

    private readonly string _connectionString;
    private readonly string _clusterId;
    private readonly string _secret;
    private readonly SiloProcess[] _silos;
    private readonly List<Restart> _restarts = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly List<string> _stopped = [];
    private readonly List<Task> _readinessWaits = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _watching;
    private int _stops;
    private int _rewrittenLogStops;

    /// <summary>One restart: when the stop was noticed (Stopwatch timestamps), whether the silo had found the log
    /// rewritten, and when its replacement answered /health/ready (0 until it has).</summary>
    public sealed class Restart(SiloProcess silo, long stoppedAt, bool rewrittenLog)
    {
        private long _readyAt;

        public SiloProcess Silo { get; } = silo;

        public long StoppedAt { get; } = stoppedAt;

        public bool RewrittenLog { get; } = rewrittenLog;

        public long ReadyAt { get => Interlocked.Read(ref _readyAt); set => Interlocked.Exchange(ref _readyAt, value); }
    }

    public SiloSupervisor(string connectionString, string clusterId, string secret, int count)
    {
        _connectionString = connectionString;
        _clusterId = clusterId;
        _secret = secret;
        _silos = Enumerable.Range(0, count).Select(_ => SiloProcess.Start(connectionString, clusterId, secret)).ToArray();
        _watching = WatchAsync();
    }

    /// <summary>The silos running now, in a fixed order (a restarted silo takes its predecessor's place and ports).</summary>
    public IReadOnlyList<SiloProcess> Current
    {
        get
        {
            lock (_restarts)
            {
                return [.. _silos];
            }
        }
    }

    /// <summary>Silo processes that stopped (and were restarted).</summary>
    public int Stops => Volatile.Read(ref _stops);

    /// <summary>Of those, silos that stopped on finding the metadata log rewritten.</summary>
    public int RewrittenLogStops => Volatile.Read(ref _rewrittenLogStops);

    /// <summary>Every restart so far, in order.</summary>
    public IReadOnlyList<Restart> Restarts
    {
        get
        {
            lock (_restarts)
            {
                return [.. _restarts];
            }
        }
    }

    /// <summary>Whether <paramref name="silo"/> was started by a restart after <paramref name="timestamp"/>.</summary>
    public bool RestartedSince(long timestamp, SiloProcess silo)
    {
        lock (_restarts)
        {
            return _restarts.Any(r => ReferenceEquals(r.Silo, silo) && r.StoppedAt > timestamp);
        }
    }

    /// <summary>Every silo's output, current and stopped, for a failure message.</summary>
    public string Describe()
    {
        lock (_restarts)
        {
            return string.Join("\n", _stopped.Concat(_silos.Select(s => $"--- {s.BaseAddress}\n{s.Output}")));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _watching;
        await Task.WhenAll(_readinessWaits);
        foreach (var silo in Current)
        {
            await silo.DisposeAsync();
        }

        _stopping.Dispose();
        _http.Dispose();
    }

    private async Task WaitReadyAsync(Restart restart)
    {
        while (!_stopping.IsCancellationRequested && !restart.Silo.HasExited)
        {
            try
            {
                using var answer = await _http.GetAsync(new Uri(restart.Silo.BaseAddress, "health/ready"), _stopping.Token);
                if (answer.IsSuccessStatusCode)
                {
                    restart.ReadyAt = Stopwatch.GetTimestamp();
                    return;
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException)
            {
                // Not listening yet, or the supervisor is stopping.
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task WatchAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            for (var i = 0; i < _silos.Length; i++)
            {
                var silo = _silos[i];
                if (!silo.HasExited)
                {
                    continue;
                }

                var stoppedAt = Stopwatch.GetTimestamp();
                await silo.WaitForExitAsync(); // its last lines read
                var rewritten = silo.Output.Contains(RewrittenLogMessage, StringComparison.Ordinal);
                var replacement = SiloProcess.Start(_connectionString, _clusterId, _secret, silo.Port, silo.SiloPort);
                var restart = new Restart(replacement, stoppedAt, rewritten);
                lock (_restarts)
                {
                    _readinessWaits.Add(WaitReadyAsync(restart));
                    _silos[i] = replacement;
                    _restarts.Add(restart);
                    _stopped.Add(string.Create(CultureInfo.InvariantCulture,
                        $"--- {silo.BaseAddress} (stopped with exit code {silo.ExitCode}{(rewritten ? ", log rewritten" : "")}; restarted)\n{silo.Output}"));
                }

                Interlocked.Increment(ref _stops);
                if (rewritten)
                {
                    Interlocked.Increment(ref _rewrittenLogStops);
                }

                await silo.DisposeAsync();
            }
        }
    }
}
