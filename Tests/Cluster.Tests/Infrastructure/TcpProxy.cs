using System.Net;
using System.Net.Sockets;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>A loopback TCP proxy to a server, which a test can cut (closing every connection and refusing new ones)
/// to take the server away from one silo only.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _cut = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;

    public TcpProxy(string host, int port)
    {
        _listener.Start();
        _accepting = AcceptAsync(host, port);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

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
            await from.GetStream().CopyToAsync(to.GetStream(), _cut.Token);
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
