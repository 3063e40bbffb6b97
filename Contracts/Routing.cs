namespace OrleansMeta.Contracts;

/// <summary>HTTP headers that tell a client where a call costs least.</summary>
public static class RoutingHeaders
{
    /// <summary>
    /// On the answer to a write that the answering silo did not serve itself (it forwarded the call to the silo owning
    /// the grain that serves it): that silo's public URL, so a client can send the same topic's, partition's or broker's
    /// next writes there directly. Set on topic creation, deletion, partition additions and config changes (keyed by the
    /// topic), AlterPartition (keyed by the partition) and broker registration, heartbeats and unregistration (keyed by
    /// the broker id). Absent when the answering silo is the owner. Consumer-group calls name their coordinator in
    /// <see cref="GroupHeaders.Coordinator"/> instead.
    /// </summary>
    public const string Owner = "Meta-Owner";
}
