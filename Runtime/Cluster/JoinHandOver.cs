using System.Collections.Concurrent;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// An active silo's side of a join. A silo that joins takes about 1/N of every other silo's grains, and those silos
/// keep serving them until they read the view that has the newcomer in it (peers are told at once) and then finish the
/// turns those activations are running. Before the newcomer loads such a grain it asks the grain's previous owner
/// (<see cref="ReleaseQuery"/>), and this silo answers once its own view has the newcomer active, so that it routes the
/// grain there and activates it no more, and it holds no activation of the grain, its last turn and write done.
/// docs/safety.md.
/// </summary>
internal sealed class JoinHandOver(IClusterMembership membership, ActivationCatalog catalog, TimeProvider time)
{
    /// <summary>How often a burst of asks right after a join may scan this silo's activations for the asker's grains.</summary>
    private static readonly TimeSpan RescanAfter = TimeSpan.FromMilliseconds(100);

    /// <summary>Askers this silo holds no grain of, in a view that has them active: it never activates one again while
    /// they stay active, so the answer for them stays true.</summary>
    private readonly ConcurrentDictionary<SiloAddress, bool> _handedOver = new();

    /// <summary>When each asker's grains were last looked for among this silo's activations, and found.</summary>
    private readonly ConcurrentDictionary<SiloAddress, long> _lastScan = new();

    /// <summary>
    /// Completes once this silo has released <paramref name="grainId"/> to <paramref name="asker"/>: true when its view
    /// has the asker active, it does not own the grain in that view, and its activation of the grain (if any) is gone.
    /// Also tells whether it has handed over every grain the asker owns (see <see cref="ReleaseResponse.HandedOver"/>).
    /// </summary>
    public async Task<(bool Released, bool HandedOver)> ReleaseAsync(GrainId grainId, SiloAddress asker, CancellationToken cancellationToken)
    {
        var view = await ViewWithAsync(asker, cancellationToken).ConfigureAwait(false);
        var self = membership.Self;
        if (self is null || !view.IsActive(asker) || RendezvousPlacement.Owner(grainId, view.ActiveSilos) == self)
        {
            return (false, false);
        }

        await catalog.WhenReleasedAsync(grainId, cancellationToken).ConfigureAwait(false);
        return (true, HandedOverTo(asker, view));
    }

    /// <summary>Whether this silo's view has <paramref name="asker"/> active and it holds no activation of a grain the
    /// asker owns in that view: the question a newcomer asks once per peer before asking per grain.</summary>
    public async Task<bool> HandedOverToAsync(SiloAddress asker, CancellationToken cancellationToken)
    {
        var view = await ViewWithAsync(asker, cancellationToken).ConfigureAwait(false);
        return membership.Self is not null && view.IsActive(asker) && HandedOverTo(asker, view);
    }

    /// <summary>This silo's view, read from the table first when the asker is ahead of it (not active in it yet), rather
    /// than leave the asker waiting for the next notice.</summary>
    private async Task<MembershipView> ViewWithAsync(SiloAddress asker, CancellationToken cancellationToken)
    {
        var view = membership.CurrentView;
        return view.IsActive(asker) ? view : await membership.RefreshAsync(cancellationToken).ConfigureAwait(false);
    }

    private bool HandedOverTo(SiloAddress asker, MembershipView view)
    {
        if (_handedOver.ContainsKey(asker))
        {
            return true;
        }

        var now = time.GetTimestamp();
        if (_lastScan.TryGetValue(asker, out var last) && time.GetElapsedTime(last, now) < RescanAfter)
        {
            return false;
        }

        _lastScan[asker] = now;
        foreach (var activation in catalog.Activations)
        {
            if (RendezvousPlacement.Owner(activation.GrainId, view.ActiveSilos) == asker)
            {
                return false;
            }
        }

        // Incarnations no longer in the view will not ask again.
        foreach (var known in _handedOver.Keys)
        {
            if (view.Find(known) is null or { Status: SiloStatus.Dead })
            {
                _handedOver.TryRemove(known, out _);
            }
        }

        _handedOver[asker] = true;
        _lastScan.TryRemove(asker, out _);
        return true;
    }
}
