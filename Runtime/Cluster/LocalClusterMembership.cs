using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// Membership of a one-silo development cluster without PostgreSQL: this silo, generation 1, always Active, at view
/// version 1. Nothing to probe and nothing to vote on.
/// </summary>
public sealed class LocalClusterMembership : IClusterMembership
{
    public LocalClusterMembership(IOptions<ClusterOptions> options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);

        // With one silo there is no other clock to disagree with, so the silo's clock stands in for the database's.
        var now = timeProvider.GetUtcNow();
        Self = new SiloAddress(new Uri(options.Value.SiloEndpoint).GetLeftPart(UriPartial.Authority), 1);
        CurrentView = new MembershipView(1, [new SiloEntry(Self, options.Value.SiloName, SiloStatus.Active, now, now, []) { ClientUrl = options.Value.ClientUrl }]) { ReadAt = now };
    }

    public SiloAddress Self { get; }

    public MembershipView CurrentView { get; }

    public bool IsActive => true;

    /// <summary>Never raised: the view never changes.</summary>
    public event Action<MembershipView>? ViewChanged
    {
        add { }
        remove { }
    }

    public Task<MembershipView> RefreshAsync(CancellationToken cancellationToken = default) => Task.FromResult(CurrentView);
}
