using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>
/// The silo-to-silo routes (<c>/silo/v1/*</c>) and their guard: they answer only on the port the silo listens on for
/// its peers (<see cref="ClusterOptions.SiloListenEndpoint"/>, by default the silo endpoint's), and only
/// to a request carrying the cluster secret (compared in constant time). Anything else gets 404 or 401 and learns
/// nothing. Hosts that map silo routes must also call <see cref="UseSiloGuard"/>.
/// </summary>
public static class SiloEndpoints
{
    /// <summary>Prefix of every silo-to-silo route.</summary>
    public const string Prefix = "/silo/v1";

    /// <summary>Creates the route group that silo-to-silo endpoints are mapped into.</summary>
    public static RouteGroupBuilder MapSiloGroup(this IEndpointRouteBuilder endpoints)
        => endpoints.MapGroup(Prefix).ExcludeFromDescription();

    /// <summary>
    /// Refuses requests to silo routes on the wrong port or without the secret, before any body is read (a middleware
    /// rather than an endpoint filter, which would run only after binding).
    /// </summary>
    public static IApplicationBuilder UseSiloGuard(this IApplicationBuilder app)
    {
        var options = app.ApplicationServices.GetRequiredService<IOptions<ClusterOptions>>().Value;
        // The listen port, not the advertised one: behind a port mapping peers' connections arrive on the former.
        var siloPort = ClusterOptions.ParseListenEndpoint(options.EffectiveSiloListenEndpoint())?.Port
            ?? throw new OptionsValidationException(ClusterOptions.SectionName, typeof(ClusterOptions), [$"{ClusterOptions.SectionName}:SiloListenEndpoint is not a usable http URI."]);
        var secret = options.ClusterSecret is { } s ? Encoding.UTF8.GetBytes(s) : null;
        return app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments(Prefix) && Refusal(context, siloPort, secret) is { } refusal)
            {
                await refusal.ExecuteAsync(context).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        });
    }

    private static IResult? Refusal(HttpContext http, int siloPort, byte[]? secret)
    {
        if (http.Connection.LocalPort != siloPort)
        {
            return Results.NotFound();
        }

        if (secret is not null)
        {
            var presented = http.Request.Headers[SiloHttpClient.SecretHeader].ToString();
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), secret))
            {
                return Results.Problem(
                    statusCode: StatusCodes.Status401Unauthorized,
                    title: "Not a member of this cluster",
                    detail: "Silo-to-silo calls must carry the cluster secret (Meta:Cluster:ClusterSecret).",
                    extensions: new Dictionary<string, object?> { ["code"] = "CLUSTER_AUTHENTICATION_FAILED" });
            }
        }

        return null;
    }
}
