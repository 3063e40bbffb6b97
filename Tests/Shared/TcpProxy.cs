using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace OrleansMeta.Tests.Shared;

/// <summary>A loopback TCP proxy to a server, which a test can cut (closing every connection and refusing new ones)
/// or stall (connections stay open but no byte moves, as in a network partition) to take the server away from one
/// silo only; given a latency, it also makes a slow link from the server (a PostgreSQL replica that runs behind its
/// primary).</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _cut = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;
    private volatile TaskCompletionSource _flowing = Flowing();
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
        Latency = latency;
        _listener.Start();
        _accepting = AcceptAsync(host, port);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>How long each byte the server sends is held before it is forwarded to the client.</summary>
    public TimeSpan Latency { get; }

    /// <summary>Bytes the server had sent that were still held (by <see cref="Latency"/>) when their connection
    /// closed, and so never reached the client.</summary>
    public long DiscardedServerBytes => Interlocked.Read(ref _discardedServerBytes);

    /// <summary>Stops moving bytes in both directions without closing anything: reads and writes just hang.</summary>
    public void Stall() => _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets bytes flow again after <see cref="Stall"/>.</summary>
    public void Unstall() => _flowing.TrySetResult();

    private static TaskCompletionSource Flowing()
    {
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        flowing.SetResult();
        return flowing;
    }

    public async Task CutAsync()
    {
        await _cut.CancelAsync();
        _listener.Stop();
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        await _accepting;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_cut.IsCancellationRequested)
        {
            await CutAsync();
        }

        _cut.Dispose();
    }

    private async Task AcceptAsync(string host, int port)
    {
        while (!_cut.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_cut.Token);
            }
            catch (Exception) when (_cut.IsCancellationRequested)
            {
                return;
            }

            var outbound = new TcpClient();
            try
            {
                await outbound.ConnectAsync(host, port, _cut.Token);
            }
            catch (Exception)
            {
                // The server is gone (or the proxy is being cut): refuse this connection as the server would.
                outbound.Dispose();
                inbound.Dispose();
                continue;
            }

            lock (_connections)
            {
                _connections.Add(inbound);
                _connections.Add(outbound);
            }

            if (Latency == TimeSpan.Zero)
            {
                _ = Pump(inbound, outbound);
                _ = Pump(outbound, inbound);
            }
            else
            {
                _ = Pump(inbound, outbound);
                _ = DelayedPump(outbound, inbound);
            }
        }
    }

    private async Task Pump(TcpClient from, TcpClient to)
    {
        try
        {
            var buffer = new byte[16 * 1024];
            var source = from.GetStream();
            var target = to.GetStream();
            while (true)
            {
                var read = await source.ReadAsync(buffer, _cut.Token);
                if (read == 0)
                {
                    return;
                }

                await _flowing.Task.WaitAsync(_cut.Token);
                await target.WriteAsync(buffer.AsMemory(0, read), _cut.Token);
            }
        }
        catch (Exception)
        {
            // The proxy was cut or a side closed: end both directions.
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    /// <summary>
    /// The server-to-client direction of a link with latency: a reader stamps each chunk as it arrives, a writer
    /// forwards it once it is <see cref="Latency"/> old. When the server closes, what is still held is discarded and
    /// both sides close.
    /// </summary>
    private async Task DelayedPump(TcpClient from, TcpClient to)
    {
        var held = Channel.CreateUnbounded<(long Due, byte[] Bytes)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long heldBytes = 0;
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(_cut.Token);
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

                await _flowing.Task.WaitAsync(closed.Token);
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

                await _flowing.Task.WaitAsync(closed.Token);
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
            // The proxy was cut or a side closed or died.
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

            from.Dispose();
            to.Dispose();
        }
    }
}
