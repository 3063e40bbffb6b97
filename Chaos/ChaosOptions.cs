namespace OrleansMeta.Chaos;

/// <summary>How long and how hard a chaos run goes. Every run stops by itself.</summary>
public sealed class ChaosOptions
{
    /// <summary>Seeds every random choice of workload and fault schedule. Default: 1.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>How long clients drive load and faults are injected (settling and checking come after). Default: 2 minutes.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The workload stops early after this many operations. Default: 100,000.</summary>
    public int MaxOperations { get; set; } = 100_000;

    /// <summary>Time between the end of one fault's recovery and the next fault. Default: 4 seconds.</summary>
    public TimeSpan FaultInterval { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>How long a fault (pause, cut, stall) lasts before it is healed. Default: 5 seconds, more than the
    /// 2-second broker session and the membership lease the runner configures.</summary>
    public TimeSpan FaultLength { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Brokers the workload registers. Default: 4.</summary>
    public int Brokers { get; set; } = 4;

    /// <summary>Hands out free loopback ports (test projects pass their own range). Default: a free port from 31000-31999
    /// (Chaos.Tests' range), below the operating system's ephemeral range, so that a killed silo's port is not handed to
    /// an outgoing connection before the silo restarts on it.</summary>
    public Func<int> FreePort { get; set; } = NextFreePort;

    /// <summary>Keep every silo's log directory after a clean run too (a run with a violation or a server error always
    /// keeps it). Default: false.</summary>
    public bool KeepLogs { get; set; }

    /// <summary>Progress lines (fault injected, phase changes). Default: none.</summary>
    public Action<string> Log { get; set; } = _ => { };

    private static int s_next = Random.Shared.Next(1000);

    private static int NextFreePort()
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = 31000 + (Interlocked.Increment(ref s_next) % 1000);
            try
            {
                using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Taken: try the next one.
            }
        }

        throw new InvalidOperationException("No free port between 31000 and 31999.");
    }
}
