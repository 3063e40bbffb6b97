using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace OrleansMeta.Tests.Shared;

/// <summary>
/// Free loopback ports for a test project's silos, from a range of the project's own below the operating system's
/// ephemeral range (32768 and up on Linux), so that a port freed by a killed silo is not handed to another test (by
/// the OS or by another test project running at the same time) before the silo restarts on it.
/// </summary>
/// <remarks>
/// A test project declares its range in its csproj:
/// <c>&lt;AssemblyMetadata Include="OrleansMeta.TestPortRange" Value="21000-28999" /&gt;</c>.
/// Ranges in use: Cluster.Tests 21000-28999, Membership.Tests 29000-29999, Silo.Tests 30000-30999,
/// Chaos.Tests 31000-31999 (also the chaos runner's default when run by hand), Failover.Tests 32000-32767.
/// </remarks>
public static class Ports
{
    /// <summary>The assembly metadata key that declares a test project's port range.</summary>
    public const string RangeKey = "OrleansMeta.TestPortRange";

    // Test processes of the same project (two developers, or a rerun while the last run's silos still exit) start at
    // different points of the range.
    private const int ProcessStride = 200;

    private static readonly Lazy<(int First, int Last)> Range = new(FindRange);
    private static int s_next = -1;

    /// <summary>A port in this test project's range that nothing listens on now.</summary>
    public static int Free()
    {
        var (first, last) = Range.Value;
        var span = last - first + 1;
        Interlocked.CompareExchange(ref s_next, Environment.ProcessId % Math.Max(1, span / ProcessStride) * ProcessStride, -1);
        for (var attempt = 0; attempt < span; attempt++)
        {
            var candidate = first + (Interlocked.Increment(ref s_next) % span);
            if (IsFree(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"No free port between {first} and {last}.");
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

    private static (int First, int Last) FindRange()
    {
        // One test project (its assembly) runs per test host process, so exactly one loaded assembly declares a range.
        var declared = AppDomain.CurrentDomain.GetAssemblies()
            .SelectMany(a => a.GetCustomAttributes<AssemblyMetadataAttribute>())
            .Where(a => a.Key == RangeKey)
            .Select(a => a.Value)
            .Distinct()
            .ToList();
        if (declared is not [{ } value])
        {
            throw new InvalidOperationException(
                $"Ports needs exactly one port range for this test project, found {declared.Count}. Declare one of its own in the " +
                $"csproj: <AssemblyMetadata Include=\"{RangeKey}\" Value=\"first-last\" /> (see Tests/Shared/Ports.cs for the ranges in use).");
        }

        var parts = value.Split('-');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var first) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var last) || first < 1024 || last < first || last > 65535)
        {
            throw new InvalidOperationException($"The port range \"{value}\" ({RangeKey}) is not \"first-last\" with 1024 <= first <= last <= 65535.");
        }

        return (first, last);
    }
}
