using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Every consumer group of the cluster with its state and lag (Kafka's ListGroups with the lag kafka-consumer-groups
/// computes). Each silo answers for the groups active on it from what their grains published (no grain calls, no
/// database); the silo asked gathers every silo's part with one call each.
/// </summary>
public static class GroupListingEndpoints
{
    private const string PeerPath = "/groups";
    private static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(10);
    private static readonly string[] States = ["empty", "assigning", "reconciling", "stable"];

    public static IEndpointRouteBuilder MapGroupListingEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGroup("/v1/groups").WithTags("Groups").MapGet("/", ListAsync).WithName("ListGroups")
            .WithSummary("Every consumer group with its state, member count, committed partitions and total lag, gathered from every silo's memory. " +
                "'state' (repeatable) keeps groups in those states. Silos that did not answer are named in unreachableSilos.")
            .Problems(ApiDocs.Read, (400, [ErrorCodes.InvalidRequest]));
        return endpoints;
    }

    /// <summary>The silo-to-silo side, mapped outside the public API's filters.</summary>
    public static IEndpointRouteBuilder MapGroupListingPeerEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSiloGroup().MapGet(PeerPath, ListLocalAsync);
        return endpoints;
    }

    private static async Task<Ok<GroupsResponse>> ListAsync(string[]? state, GroupDirectory directory, IGrainFactory grains, SiloPeers peers, CancellationToken cancellationToken)
    {
        foreach (var name in state ?? [])
        {
            if (!States.Contains(name, StringComparer.Ordinal))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"state '{name}' is not a group state; use {string.Join(", ", States)}.");
            }
        }

        var remote = peers.SendToOthersAsync<GroupListing[]>(() => new HttpRequestMessage(HttpMethod.Get, SiloEndpoints.Prefix + PeerPath), PeerTimeout, cancellationToken);
        var local = await directory.ListAsync(grains);
        var groups = new Dictionary<string, GroupListing>(StringComparer.Ordinal);
        foreach (var group in local)
        {
            groups[group.GroupId] = group;
        }

        var unreachable = new List<string>();
        foreach (var answer in await remote)
        {
            if (answer.Body is null)
            {
                unreachable.Add(answer.Silo.ToString());
                continue;
            }

            // A group moving between silos may be listed by both for a moment; either line is a recent one.
            foreach (var group in answer.Body)
            {
                groups.TryAdd(group.GroupId, group);
            }
        }

        var wanted = state is { Length: > 0 } ? state.ToHashSet(StringComparer.Ordinal) : null;
        var listed = groups.Values.Where(g => wanted is null || wanted.Contains(g.State)).OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
        return TypedResults.Ok(new GroupsResponse(listed, unreachable));
    }

    private static async Task<Ok<IReadOnlyList<GroupListing>>> ListLocalAsync(GroupDirectory directory, IGrainFactory grains)
        => TypedResults.Ok(await directory.ListAsync(grains));
}
