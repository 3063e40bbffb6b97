using System.Globalization;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>Consumer group settings for tests: heartbeats every 200 ms and sessions checked every 100 ms, so removals
/// happen within a test.</summary>
internal static class GroupSettings
{
    /// <summary>Fast groups with the given session timeout (long enough for what the test does on a loaded machine).</summary>
    public static Dictionary<string, string> Fast(TimeSpan sessionTimeout) => new()
    {
        ["Meta:Groups:HeartbeatInterval"] = "00:00:00.200",
        ["Meta:Groups:SessionTimeout"] = sessionTimeout.ToString("c", CultureInfo.InvariantCulture),
        ["Meta:Groups:SessionCheckInterval"] = "00:00:00.100",
    };
}
