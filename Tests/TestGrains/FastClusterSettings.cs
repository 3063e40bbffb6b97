namespace OrleansMeta.TestGrains;

/// <summary>
/// Quicker failure detection than the defaults, for test clusters and chaos runs that must notice and heal faults
/// within seconds: one list, so that both exercise the same timing.
/// </summary>
public static class FastClusterSettings
{
    public static IReadOnlyDictionary<string, string> Membership { get; } = new Dictionary<string, string>
    {
        ["Meta:Membership:ProbeInterval"] = "00:00:00.250",
        ["Meta:Membership:ProbeTimeout"] = "00:00:00.250",
        ["Meta:Membership:RefreshInterval"] = "00:00:00.500",
        ["Meta:Membership:HeartbeatInterval"] = "00:00:00.500",
        ["Meta:Brokers:SessionTimeout"] = "00:00:02",
        ["Meta:Controller:ReconcileInterval"] = "00:00:01",
        ["Meta:Controller:AutoLeaderRebalance"] = "false",
    };
}
