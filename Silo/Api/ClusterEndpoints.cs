using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Silo.Api;

/// <summary>Cluster-wide read endpoints.</summary>
public static class ClusterEndpoints
{
    public static IEndpointRouteBuilder MapClusterEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/cluster", GetCluster)
            .WithName("GetCluster")
            .WithSummary("The cluster id and the membership view this silo holds.")
            .WithTags("Cluster")
            .Problems(ApiDocs.Read);
        return endpoints;
    }

    private static Ok<ClusterInfo> GetCluster(IClusterMembership membership, IOptions<SiloOptions> options, MetadataImageService image)
    {
        var view = membership.CurrentView;
        var self = membership.Self;
        var silos = view.Silos
            .OrderBy(s => s.Address)
            .Select(s => new SiloInfo(
                s.Address.Endpoint,
                s.Address.Generation,
                s.Name,
                StatusName(s.Status),
                s.StartedAt,
                s.HeartbeatAt,
                s.Suspicions.Count,
                s.Address == self))
            .ToList();
        var controller = image.Current.Controller is { } c ? new ControllerInfo(c.Silo, c.Epoch) : null;
        return TypedResults.Ok(new ClusterInfo(options.Value.ClusterId, view.Version, view.ReadAt, self?.ToString(), silos, controller));
    }

    private static string StatusName(SiloStatus status) => status switch
    {
        SiloStatus.Joining => "joining",
        SiloStatus.Active => "active",
        SiloStatus.ShuttingDown => "shutting-down",
        _ => "dead",
    };
}
