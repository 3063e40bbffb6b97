using System.Globalization;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// One incarnation of a silo: the silo-to-silo endpoint it advertises (an absolute http URI) and a generation that
/// grows on every start. A silo that restarts on the same endpoint is a different incarnation and never inherits the
/// old one's votes or status.
/// </summary>
public sealed record SiloAddress(string Endpoint, long Generation) : IComparable<SiloAddress>
{
    public int CompareTo(SiloAddress? other) => other is null ? 1
        : string.CompareOrdinal(Endpoint, other.Endpoint) is var c && c != 0 ? c : Generation.CompareTo(other.Generation);

    /// <summary>Stable text used for hashing and logs: <c>endpoint@generation</c>.</summary>
    public override string ToString() => $"{Endpoint}@{Generation.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>The life of a silo in the membership table.</summary>
public enum SiloStatus
{
    /// <summary>Started, checking it can reach the active silos; owns no grains yet.</summary>
    Joining,

    /// <summary>Serving; owns grains.</summary>
    Active,

    /// <summary>Stopping gracefully; owns no grains any more.</summary>
    ShuttingDown,

    /// <summary>Gone for good (stopped, or declared dead by its peers). A dead incarnation never comes back.</summary>
    Dead,
}

/// <summary>A vote by <paramref name="Voter"/> that <c>this</c> silo is dead, stamped with the database's clock.</summary>
public sealed record SuspicionVote(SiloAddress Voter, DateTimeOffset At);

/// <summary>One row of the membership table as a silo last read it.</summary>
public sealed record SiloEntry(
    SiloAddress Address,
    string Name,
    SiloStatus Status,
    DateTimeOffset StartedAt,
    DateTimeOffset HeartbeatAt,
    IReadOnlyList<SuspicionVote> Suspicions)
{
    /// <summary>The URL clients reach this silo's public API at (<see cref="ClusterOptions.ClientUrl"/>), or null when
    /// the silo does not say (a silo of a version before it was recorded).</summary>
    public string? ClientUrl { get; init; }
}

/// <summary>
/// A consistent snapshot of the membership table. <see cref="Version"/> grows with every change to any row, so two
/// silos holding views of equal version agree on every status.
/// </summary>
public sealed record MembershipView(long Version, IReadOnlyList<SiloEntry> Silos)
{
    public static MembershipView Empty { get; } = new(0, []);

    /// <summary>The database's clock when the view was read; every liveness comparison uses this clock, never a
    /// silo's own.</summary>
    public DateTimeOffset ReadAt { get; init; }

    /// <summary>Active silos in a stable order; placement hashes over exactly this list.</summary>
    public IReadOnlyList<SiloAddress> ActiveSilos { get; } = Silos.Where(s => s.Status == SiloStatus.Active)
        .Select(s => s.Address).Order().ToArray();

    public SiloEntry? Find(SiloAddress address)
    {
        // A loop, not FirstOrDefault with a lambda: placement asks once per grain located (a failover: per partition).
        for (var i = 0; i < Silos.Count; i++)
        {
            if (Silos[i].Address == address)
            {
                return Silos[i];
            }
        }

        return null;
    }

    public bool IsActive(SiloAddress address) => Find(address)?.Status == SiloStatus.Active;
}

/// <summary>This silo's knowledge of the cluster: who it is, and the latest membership view it has seen.</summary>
public interface IClusterMembership
{
    /// <summary>This silo's incarnation; known once the silo has registered (before that, <c>null</c>).</summary>
    SiloAddress? Self { get; }

    /// <summary>The newest view this silo has seen. Never goes back in version.</summary>
    MembershipView CurrentView { get; }

    /// <summary>Whether this silo is active in its own view (joined, not shutting down, not declared dead) and still
    /// holds its ownership lease (a recent successful heartbeat). Only then does it serve grains or run their timers.</summary>
    bool IsActive { get; }

    /// <summary>Whether this silo has begun to leave gracefully: set before its row turns ShuttingDown, and from then on
    /// it activates no grain.</summary>
    bool IsLeaving => false;

    /// <summary>Raised (on a background thread) after <see cref="CurrentView"/> has moved to a newer version.</summary>
    event Action<MembershipView>? ViewChanged;

    /// <summary>Re-reads the table now (for example after a peer reported a change), returning the newest view.</summary>
    Task<MembershipView> RefreshAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes once no silo that its peers declared dead can still believe it owns grains (its ownership lease has
    /// run out, judged on the database's clock). Grains whose truth lives in memory wait for this before activating
    /// on a new owner, so two owners never answer from memory at once.
    /// </summary>
    Task WaitForDeadSilosLeasesAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Completes once no silo that is leaving gracefully still owned <paramref name="grainId"/> when it began to leave.
    /// Peers stop routing to a ShuttingDown silo at once, while its activations still finish their last turns and
    /// writes; a new owner that loaded state before such a write committed would lose its first write to the
    /// compare-and-set. Every activation waits for this before loading state; it costs nothing when no silo is leaving
    /// or the grain was not the leaving silo's.
    /// </summary>
    Task WaitForLeavingOwnerAsync(GrainId grainId, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Completes once the active silo that owned <paramref name="grainId"/> until this silo joined holds no activation
    /// of it and will create none. That silo keeps serving the grain until it reads the view with this silo in it, and
    /// its activation finishes the turn it is running after that; a new owner that loaded state before that turn's
    /// write committed would lose its first write to the compare-and-set, and two activations of a grain that keeps
    /// truth in memory would both answer from it. Costs one silo-to-silo request per grain until the previous owner
    /// says it has handed over everything, usually with its first answer; then nothing.
    /// </summary>
    Task WaitForJoinHandOverAsync(GrainId grainId, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Something that must be true before this silo turns Active and so owns grains, for example "this silo's metadata
/// image has caught up with the log head it read at start". Membership waits for every registered gate after the
/// host has started and before joining; meanwhile the silo heartbeats as Joining and owns nothing.
/// </summary>
public interface IJoinGate
{
    /// <summary>What the gate waits for, for the log line while the silo waits.</summary>
    string Description { get; }

    /// <summary>Completes once the silo may own grains as far as this gate is concerned.</summary>
    Task WaitAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Something a silo that leaves gracefully waits for after every peer has been told it is leaving and before it marks
/// itself Dead, for example "no peer is still sending grain calls here" or "its grains have deactivated". Membership
/// waits for every registered drain, in registration order, in the host's stopping phase, before any hosted service
/// stops: the silo's endpoints stay open meanwhile, and new owners wait for the Dead row before loading its grains.
/// </summary>
public interface ILeaveDrain
{
    /// <summary>What the drain waits for, for the log line while the silo waits.</summary>
    string Description { get; }

    /// <summary>Completes once the silo's endpoints may close as far as this drain is concerned (true), or once its
    /// own bound ran out first (false).</summary>
    Task<bool> WaitAsync(CancellationToken cancellationToken);
}
