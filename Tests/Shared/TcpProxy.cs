using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace OrleansMeta.Tests.Shared;

/// <summary>
/// A loopback TCP proxy to a server, which a test or the chaos runner breaks and heals: a cut closes the connections
/// and drops new ones at once; a stall keeps them open but moves no byte, as in a network partition. Either applies to
/// every connection, or only to those coming from one source address (on loopback each silo can connect from its own
/// 127.0.0.x), so that one client is taken away from the server while the others go on. Given a latency, it also
/// makes a slow link from the server (a PostgreSQL replica that runs behind its primary).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Connection> _connections = [];
    private readonly Task _accepting;
    private readonly string _host;
    private readonly int _port;
    private Fault? _fault;
    private long _discardedServerBytes;

    /// <param name="host">The server's host.</param>
    /// <param name="port">The server's port.</param>
    /// <param name="latency">
    /// How long each byte the server sends is held before the client gets it (zero: at once; the client's bytes always
    /// go at once). A held byte waits on the server's side of the link: when the server closes or dies, what the proxy
    /// still holds from it is discarded, not delivered, as the unsent data of a crashed machine is (see
    /// <see cref="DiscardedServerBytes"/>). A PostgreSQL replica streaming through such a proxy lags that far behind.
    /// </param>
    public TcpProxy(string host, int port, TimeSpan latency = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latency, TimeSpan.Zero);
        _host = host;
        _port = port;
        Latency = latency;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>How long each byte the server sends is held before it is forwarded to the client.</summary>
    public TimeSpan Latency { get; }

    /// <summary>Bytes the server had sent that were still held (by <see cref="Latency"/>) when their connection
    /// closed, and so never reached the client.</summary>
    public long DiscardedServerBytes => Interlocked.Read(ref _discardedServerBytes);

    /// <summary>Closes every connection (from <paramref name="from"/> only, when given) and drops new ones until
    /// <see cref="Heal"/>.</summary>
    public void Cut(IPAddress? from = null)
    {
        var fault = new Fault(Stall: false, from);
        Set(fault);
        lock (_connections)
        {
            foreach (var connection in _connections.Where(c => fault.Applies(c.Source)).ToList())
            {
                connection.Close();
                _connections.Remove(connection);
            }
        }
    }

    /// <summary>Stops moving bytes in both directions (on connections from <paramref name="from"/> only, when given)
    /// without closing anything: reads and writes just hang until <see cref="Heal"/>.</summary>
    public void Stall(IPAddress? from = null) => Set(new Fault(Stall: true, from));

    /// <summary>Ends a cut or a stall. Connections that were stalled carry on (their client may have given up on them).</summary>
    public void Heal() => Set(null);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Heal();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Close();
            }

            _connections.Clear();
        }

        await _accepting;
        _stop.Dispose();
    }

    private void Set(Fault? fault) => Interlocked.Exchange(ref _fault, fault)?.Healed.TrySetResult();

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            var source = ((IPEndPoint)inbound.Client.RemoteEndPoint!).Address;
            if (Volatile.Read(ref _fault) is { Stall: false } cut && cut.Applies(source))
            {
                inbound.Dispose();
                continue;
            }

            var outbound = new TcpClient();
            try
            {
                await outbound.ConnectAsync(_host, _port, _stop.Token);
            }
            catch (Exception)
            {
                // The server is down (restarting): the client sees its connection end, much as it would without the proxy.
                inbound.Dispose();
                outbound.Dispose();
                continue;
            }

            var connection = new Connection(source, inbound, outbound);
            lock (_connections)
            {
                _connections.Add(connection);
            }

            _ = PumpAsync(connection, inbound, outbound);
            _ = Latency == TimeSpan.Zero ? PumpAsync(connection, outbound, inbound) : DelayedPumpAsync(connection, outbound, inbound);
        }
    }

    private async Task PumpAsync(Connection connection, TcpClient from, TcpClient to)
    {
        try
        {
            var buffer = new byte[16 * 1024];
            var source = from.GetStream();
            var target = to.GetStream();
            while (true)
            {
                var read = await source.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                await WhileStalledAsync(connection, _stop.Token);
                await target.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception)
        {
            // Cut, stopped, or a side closed: end both directions.
        }
        finally
        {
            Close(connection);
        }
    }

    /// <summary>
    /// The server-to-client direction of a link with latency: a reader stamps each chunk as it arrives, a writer
    /// forwards it once it is <see cref="Latency"/> old. When the server closes, what is still held is discarded and
    /// both sides close.
    /// </summary>
    private async Task DelayedPumpAsync(Connection connection, TcpClient from, TcpClient to)
    {
        var held = Channel.CreateUnbounded<(long Due, byte[] Bytes)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long heldBytes = 0;
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var writing = Task.Run(async () =>
        {
            var target = to.GetStream();
            await foreach (var (due, bytes) in held.Reader.ReadAllAsync(closed.Token))
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, closed.Token);
                }

                await WhileStalledAsync(connection, closed.Token);
                await target.WriteAsync(bytes, closed.Token);
                Interlocked.Add(ref heldBytes, -bytes.Length);
            }
        });
        try
        {
            var buffer = new byte[16 * 1024];
            var source = from.GetStream();
            while (true)
            {
                var read = await source.ReadAsync(buffer, closed.Token);
                if (read == 0)
                {
                    break;
                }

                await WhileStalledAsync(connection, closed.Token);
                var due = Stopwatch.GetTimestamp() + (long)(Latency.TotalSeconds * Stopwatch.Frequency);
                Interlocked.Add(ref heldBytes, read);
                held.Writer.TryWrite((due, buffer[..read]));
                if (writing.IsCompleted)
                {
                    break; // The other side closed: nothing more can be delivered.
                }
            }
        }
        catch (Exception)
        {
            // Cut, stopped, or a side closed or died.
        }
        finally
        {
            // The sender closed (or died): what it still had on its side of the link dies with it.
            await closed.CancelAsync();
            held.Writer.TryComplete();
            try
            {
                await writing;
            }
            catch (Exception)
            {
                // Cancelled, or the receiving side had closed.
            }

            Interlocked.Add(ref _discardedServerBytes, Math.Max(0, Interlocked.Read(ref heldBytes)));
            Close(connection);
        }
    }

    private async Task WhileStalledAsync(Connection connection, CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _fault) is { Stall: true } stall && stall.Applies(connection.Source))
        {
            await stall.Healed.Task.WaitAsync(cancellationToken);
        }
    }

    private void Close(Connection connection)
    {
        connection.Close();
        lock (_connections)
        {
            _connections.Remove(connection);
        }
    }

    private sealed record Fault(bool Stall, IPAddress? From)
    {
        public TaskCompletionSource Healed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Applies(IPAddress source) => From is null || From.Equals(source);
    }

    private sealed record Connection(IPAddress Source, TcpClient Inbound, TcpClient Outbound)
    {
        public void Close()
        {
            Inbound.Dispose();
            Outbound.Dispose();
        }
    }
}
