using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>Broker registration, heartbeats and listing.</summary>
public static class BrokerEndpoints
{
    public static IEndpointRouteBuilder MapBrokerEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/brokers").WithTags("Brokers");

        // Path values are bound without route constraints: "/v1/brokers/abc" is a bad broker id (400 naming the
        // parameter), not a missing endpoint (404).
        group.MapPost("/{id}/registration", RegisterAsync).WithName("RegisterBroker")
            .WithSummary("Registers a broker incarnation; returns its broker epoch. Brokers start fenced.")
            .Problems(ApiDocs.Write, (409, [ErrorCodes.DuplicateBrokerRegistration]))
            .NamesBrokerOwner();
        group.MapPost("/{id}/heartbeat", HeartbeatAsync).WithName("BrokerHeartbeat")
            .WithSummary("Keeps the broker's session alive (default every 2 s, session 9 s); unfences a caught-up broker; drives controlled shutdown.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.OffsetOutOfRange]), (404, [ErrorCodes.BrokerIdNotRegistered]), (409, [ErrorCodes.StaleBrokerEpoch]))
            .NamesBrokerOwner();
        group.MapDelete("/{id}", UnregisterAsync).WithName("UnregisterBroker")
            .WithSummary("Removes a broker that is gone for good (Kafka's UnregisterBroker). Refused while it is unfenced or its session is alive " +
                "(BROKER_SESSION_ALIVE) and while partitions list it as a replica (BROKER_HAS_REPLICAS: reassign them first).")
            .Problems(ApiDocs.Write, (404, [ErrorCodes.BrokerIdNotRegistered]), (409, [ErrorCodes.BrokerSessionAlive, ErrorCodes.BrokerHasReplicas]))
            .NamesBrokerOwner();
        group.MapGet("/", ListAsync).WithName("ListBrokers").WithSummary("Registered brokers and their state, from this silo's metadata image.")
            .Problems(ApiDocs.Read);
        return endpoints;
    }

    /// <summary>A call for the broker in the route that this silo forwarded names the owner of the broker's grain: the
    /// broker's heartbeats, every couple of seconds for as long as it runs, then skip the hop.</summary>
    private static RouteHandlerBuilder NamesBrokerOwner(this RouteHandlerBuilder builder)
        => builder.NamesOwner<IBrokerGrain>(context => context.Arguments is [int id, ..] ? BrokerKey(id) : null);

    private static async Task<Ok<BrokerRegistrationResponse>> RegisterAsync(int id, BrokerRegistrationRequest request, IGrainFactory grains)
    {
        Validation.NonNegative(id, "path parameter 'id' (the broker id)");
        BrokerInput.Validate(request);
        var listeners = request.Listeners.Select(l => new ListenerRecord(l.Name, l.Host, l.Port, l.SecurityProtocol)).ToList();
        var result = await Broker(grains, id).RegisterAsync(new RegisterBroker(request.IncarnationId, listeners, request.Rack));
        return TypedResults.Ok(new BrokerRegistrationResponse(result.BrokerId, result.BrokerEpoch, result.MetadataOffset));
    }

    private static async Task<Ok<BrokerHeartbeatResponse>> HeartbeatAsync(
        int id, BrokerHeartbeatRequest request, IGrainFactory grains, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        Validation.NonNegative(id, "path parameter 'id' (the broker id)");
        await Validation.WithinHeadAsync(image, log, request.CurrentMetadataOffset, "$.currentMetadataOffset", cancellationToken);
        var result = await Broker(grains, id).HeartbeatAsync(new BrokerHeartbeat(request.BrokerEpoch, request.CurrentMetadataOffset, request.WantShutDown));
        return TypedResults.Ok(new BrokerHeartbeatResponse(result.IsFenced, result.IsCaughtUp, result.ShouldShutDown, result.MetadataOffset));
    }

    private static async Task<Ok<BrokerUnregistrationResponse>> UnregisterAsync(int id, IGrainFactory grains)
    {
        Validation.NonNegative(id, "path parameter 'id' (the broker id)");
        var offset = await Broker(grains, id).UnregisterAsync();
        return TypedResults.Ok(new BrokerUnregistrationResponse(id, offset));
    }

    private static async Task<Ok<BrokersResponse>> ListAsync(long? minOffset, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        var metadata = await Validation.ImageAsync(image, log, minOffset, cancellationToken);
        return TypedResults.Ok(new BrokersResponse(metadata.Brokers.Values.OrderBy(b => b.Record.BrokerId).Select(Mapping.Broker).ToList(), metadata.Offset));
    }

    private static IBrokerGrain Broker(IGrainFactory grains, int id) => grains.GetGrain<IBrokerGrain>(BrokerKey(id));

    private static string BrokerKey(int id) => id.ToString(CultureInfo.InvariantCulture);
}
