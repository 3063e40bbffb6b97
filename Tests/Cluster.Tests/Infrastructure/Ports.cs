using System.Net;
using System.Net.Sockets;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>
/// Ports for this test project's silos, from a range of its own below the operating system's ephemeral range, so that
/// a port freed by a killed silo is not handed to another test (by the OS or by us) before the silo restarts on it.
/// </summary>
public static class Ports
{
    private const int First = 21000;
    private const int Last = 28999;
    private static int s_next = First + (Environment.ProcessId % 40 * 200);

    public static int Free()
    {
        for (var attempt = 0; attempt < Last - First; attempt++)
        {
            var candidate = First + ((Interlocked.Increment(ref s_next) - First) % (Last - First));
            if (IsFree(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"No free port between {First} and {Last}.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
