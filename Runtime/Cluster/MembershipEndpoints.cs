using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Runtime.Activation;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>A probe's answer: which incarnation answered, its status in its own view, and the HTTP protocol the
/// request arrived on (so tests and operators can see that silo traffic really is HTTP/2).</summary>
public sealed record ProbeResponse(string Endpoint, long Generation, string Status, string Protocol);

/// <summary>Tells a silo that the membership table has reached <paramref name="Version"/>.</summary>
public sealed record MembershipChangedNotice(long Version);

/// <summary>What the notified silo holds after handling a <see cref="MembershipChangedNotice"/>.</summary>
public sealed record MembershipChangedResponse(long Version);

/// <summary>
/// Asks a silo whether it has released <paramref name="Grain"/> (a grain id as text) to the asking silo, its new owner
/// (<paramref name="AskerEndpoint"/>, <paramref name="AskerGeneration"/>): a silo that is leaving, or an active silo
/// that owned the grain until the asker joined. Without a grain, asks an active silo only whether it has handed over
/// everything the asker owns (<see cref="ReleaseResponse.HandedOver"/>).
/// </summary>
public sealed record ReleaseQuery(string? Grain, string? AskerEndpoint = null, long? AskerGeneration = null);

/// <summary>
/// The answer: which incarnation answered; whether it holds no activation of the grain and will create none
/// (<paramref name="Released"/>); and, from an active silo, whether its view has the asker active and it holds no
/// activation of any grain the asker owns in that view (<paramref name="HandedOver"/>): from then on it never will,
/// so the asker need not ask it again. <paramref name="AnswersJoins"/> is true from every silo that answers for joins;
/// a silo of an earlier version leaves it out and answers an active silo's "not released" whatever it holds.
/// </summary>
public sealed record ReleaseResponse(string Endpoint, long Generation, bool Released, bool HandedOver = false, bool AnswersJoins = false);

/// <summary>The silo-to-silo routes of the membership protocol, inside the guarded <c>/silo/v1</c> group.</summary>
public static class MembershipEndpoints
{
    public const string ProbePath = "probe";
    public const string MembershipPath = "membership";
    public const string ReleasedPath = "released";

    /// <summary>Maps <c>GET /silo/v1/probe</c>, <c>POST /silo/v1/membership</c> and <c>POST /silo/v1/released</c>.</summary>
    public static IEndpointRouteBuilder MapMembershipEndpoints(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var group = endpoints.MapSiloGroup();
        group.MapGet(ProbePath, Probe);
        group.MapPost(MembershipPath, MembershipChangedAsync);
        group.MapPost(ReleasedPath, ReleasedAsync);
        return endpoints;
    }

    private static Results<Ok<ProbeResponse>, ProblemHttpResult> Probe(HttpContext context)
    {
        var membership = context.RequestServices.GetRequiredService<IClusterMembership>();
        if (membership.Self is not { } self)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "This silo has not registered yet");
        }

        var status = membership.CurrentView.Find(self)?.Status ?? SiloStatus.Joining;
        if (status == SiloStatus.Active && !membership.IsActive)
        {
            // Active in the table but not serving (cut off from the table, or it read itself dead): answering the probe
            // would keep peers from declaring it dead and taking over its grains.
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "This silo is not serving");
        }

        return TypedResults.Ok(new ProbeResponse(self.Endpoint, self.Generation, status.ToString(), context.Request.Protocol));
    }

    /// <summary>
    /// Asked by a grain's new owner before it loads the grain: answers once this silo holds no activation of the grain
    /// (its last turn and write are done) and will create none. A leaving silo activates nothing, so the answer stays
    /// true; the new owner can load the grain without waiting for this whole silo to finish. An active silo answers
    /// for a silo that joined (<see cref="JoinHandOver"/>). docs/safety.md.
    /// </summary>
    private static async Task<Results<Ok<ReleaseResponse>, ProblemHttpResult>> ReleasedAsync(ReleaseQuery query, HttpContext context)
    {
        var membership = context.RequestServices.GetRequiredService<IClusterMembership>();
        if (membership.Self is not { } self)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "This silo has not registered yet");
        }

        var asker = query is { AskerEndpoint: { } endpoint, AskerGeneration: { } generation } ? new SiloAddress(endpoint, generation) : null;
        var handOver = context.RequestServices.GetRequiredService<JoinHandOver>();
        if (query.Grain is null)
        {
            var everything = asker is not null && !membership.IsLeaving && await handOver.HandedOverToAsync(asker, context.RequestAborted).ConfigureAwait(false);
            return TypedResults.Ok(new ReleaseResponse(self.Endpoint, self.Generation, Released: false, everything, AnswersJoins: true));
        }

        if (!GrainId.TryParse(query.Grain, out var grainId))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: $"'{query.Grain}' is not a grain id (type/key).");
        }

        if (!membership.IsLeaving)
        {
            var (released, handedOver) = asker is null
                ? (false, false)
                : await handOver.ReleaseAsync(grainId, asker, context.RequestAborted).ConfigureAwait(false);
            return TypedResults.Ok(new ReleaseResponse(self.Endpoint, self.Generation, released, handedOver, AnswersJoins: true));
        }

        await context.RequestServices.GetRequiredService<ActivationCatalog>().WhenReleasedAsync(grainId, context.RequestAborted).ConfigureAwait(false);
        return TypedResults.Ok(new ReleaseResponse(self.Endpoint, self.Generation, Released: true, AnswersJoins: true));
    }

    private static async Task<Ok<MembershipChangedResponse>> MembershipChangedAsync(MembershipChangedNotice notice, HttpContext context)
    {
        var membership = context.RequestServices.GetRequiredService<IClusterMembership>();
        var view = membership.CurrentView;
        if (notice.Version > view.Version)
        {
            view = await membership.RefreshAsync(context.RequestAborted).ConfigureAwait(false);
        }

        return TypedResults.Ok(new MembershipChangedResponse(view.Version));
    }
}
