using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Placement;

/// <summary>Where a grain lives in one silo's view of the cluster.</summary>
/// <param name="Grain">The grain asked about.</param>
/// <param name="Owner">The owning silo's membership row, or null when no silo is active in the view.</param>
/// <param name="ViewVersion">The version of the membership view the owner was computed on.</param>
/// <param name="IsLocal">Whether the owner is the silo that answered (so a call to the grain is served without a hop).</param>
public sealed record GrainLocation(GrainId Grain, SiloEntry? Owner, long ViewVersion, bool IsLocal);

/// <summary>
/// Answers which silo owns a grain, by the same pure function of grain id and membership view that routes calls
/// (<see cref="RendezvousPlacement"/>), so that clients can send calls for a grain they use often straight to its
/// owner (a consumer group's coordinator). Silos holding equal view versions give equal answers.
/// </summary>
public sealed class GrainLocator(IClusterMembership membership, GrainTypeRegistry registry)
{
    /// <summary>The owner of the grain of interface <typeparamref name="TGrainInterface"/> with key
    /// <paramref name="key"/> in this silo's current view.</summary>
    public GrainLocation Locate<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);
        var grainId = new GrainId(registry.GetInterface(typeof(TGrainInterface)).GrainType, key);
        var view = membership.CurrentView;
        var owner = RendezvousPlacement.Owner(grainId, view.ActiveSilos);
        return new GrainLocation(grainId, owner is null ? null : view.Find(owner), view.Version, owner is not null && owner == membership.Self);
    }
}
