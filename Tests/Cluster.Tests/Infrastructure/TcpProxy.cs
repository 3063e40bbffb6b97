using System.Net;
using System.Net.Sockets;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>A loopback TCP proxy to a server, which a test can cut (closing every connection and refusing new ones)
/// or stall (connections stay open but no byte moves, as in a network partition) to take the server away from one
/// silo only.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _cut = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;
    private volatile TaskCompletionSource _flowing = Flowing();

    public TcpProxy(string host, int port)
    {
        _listener.Start();
        _accepting = AcceptAsync(host, port);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

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
            await outbound.ConnectAsync(host, port);
            lock (_connections)
            {
                _connections.Add(inbound);
                _connections.Add(outbound);
            }

            _ = Pump(inbound, outbound);
            _ = Pump(outbound, inbound);
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
}
