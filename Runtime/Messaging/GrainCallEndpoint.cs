using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Messaging;

/// <summary>The receiving side of silo-to-silo grain calls: POST /silo/v1/calls.</summary>
public static class GrainCallEndpoint
{
    public static IEndpointRouteBuilder MapGrainCallEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSiloGroup().MapPost("/calls", HandleAsync);
        return endpoints;
    }

    private static async Task<IResult> HandleAsync(RemoteCall call, HttpContext context)
    {
        var services = context.RequestServices;
        using var arrival = services.GetRequiredService<InboundGrainCalls>().Enter();
        var codec = services.GetRequiredService<GrainCallCodec>();
        try
        {
            var registry = services.GetRequiredService<GrainTypeRegistry>();
            var grainId = GrainId.Parse(call.Grain);
            if (!registry.TryGetGrainClass(grainId.Type, out var grainInterface, out _))
            {
                throw new ArgumentException($"This silo has no grain type '{grainId.Type}'; are all silos running the same version?");
            }

            if (!grainInterface.TryGetMethod(call.Method, out var method))
            {
                throw new ArgumentException($"Grain type '{grainId.Type}' has no method {call.Method} on this silo; are all silos running the same version?");
            }

            var dispatcher = services.GetRequiredService<ClusterCallDispatcher>();
            if (!dispatcher.IsLocalOwner(grainId) || !services.GetRequiredService<IClusterMembership>().IsActive)
            {
                // Views disagree for a moment; the sender refreshes its view and retries. Forwarding again could bounce.
                var view = services.GetRequiredService<IClusterMembership>().CurrentView;
                throw new NotOwnerException($"Silo does not own {grainId} in its view (version {view.Version}).");
            }

            var token = context.RequestAborted;
            var request = new GrainRequest(grainId, grainInterface, method, codec.DecodeArguments(method, call.Arguments, token),
                GrainCallCodec.DecodeChain(call.Chain), token);
            services.GetRequiredService<ActivationCatalog>().Dispatch(request);
            var value = await request.Completion.ConfigureAwait(false);
            return TypedResults.Json(codec.EncodeResult(method, value), codec.Json);
        }
        catch (Exception exception)
        {
            return TypedResults.Json(codec.EncodeError(exception), codec.Json);
        }
    }
}
