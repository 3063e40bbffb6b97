using System.Net;
using System.Net.Sockets;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

public static class Ports
{
    /// <summary>A loopback port that was free a moment ago (the OS hands out ports round-robin, so reuse is unlikely).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
