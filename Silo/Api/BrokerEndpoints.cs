using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Client.Models;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;

namespace OrleansMeta.Silo.Api;

/// <summary>Broker registration, heartbeats and listing.</summary>
public static class BrokerEndpoints
{
    public static IEndpointRouteBuilder MapBrokerEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/brokers").WithTags("Brokers");
        group.MapPost("/{id:int}/registration", RegisterAsync).WithName("RegisterBroker")
            .WithSummary("Registers a broker incarnation; returns its broker epoch. Brokers start fenced.");
        group.MapPost("/{id:int}/heartbeat", HeartbeatAsync).WithName("BrokerHeartbeat")
            .WithSummary("Keeps the broker's session alive (default every 2 s, session 9 s); unfences a caught-up broker; drives controlled shutdown.");
        group.MapDelete("/{id:int}", UnregisterAsync).WithName("UnregisterBroker")
            .WithSummary("Removes a broker that is gone for good (Kafka's UnregisterBroker). Refused while it is unfenced or its session is alive " +
                "(BROKER_SESSION_ALIVE) and while partitions list it as a replica (BROKER_HAS_REPLICAS: reassign them first).");
        group.MapGet("/", ListAsync).WithName("ListBrokers").WithSummary("Registered brokers and their state, from this silo's metadata image.");
        return endpoints;
    }

    private static async Task<Ok<BrokerRegistrationResponse>> RegisterAsync(int id, BrokerRegistrationRequest request, IGrainFactory grains)
    {
        Validation.NonNegative(id, "broker id");
        var listeners = (request.Listeners ?? []).Select(l => new ListenerRecord(l.Name, l.Host, l.Port, l.SecurityProtocol ?? "PLAINTEXT")).ToList();
        var result = await Broker(grains, id).RegisterAsync(new RegisterBroker(request.IncarnationId, listeners, request.Rack));
        return TypedResults.Ok(new BrokerRegistrationResponse(result.BrokerId, result.BrokerEpoch, result.MetadataOffset));
    }

    private static async Task<Ok<BrokerHeartbeatResponse>> HeartbeatAsync(int id, BrokerHeartbeatRequest request, IGrainFactory grains)
    {
        Validation.NonNegative(id, "broker id");
        var result = await Broker(grains, id).HeartbeatAsync(new BrokerHeartbeat(request.BrokerEpoch, request.CurrentMetadataOffset, request.WantShutDown));
        return TypedResults.Ok(new BrokerHeartbeatResponse(result.IsFenced, result.IsCaughtUp, result.ShouldShutDown, result.MetadataOffset));
    }

    private static async Task<NoContent> UnregisterAsync(int id, IGrainFactory grains)
    {
        Validation.NonNegative(id, "broker id");
        await Broker(grains, id).UnregisterAsync();
        return TypedResults.NoContent();
    }

    private static async Task<Ok<BrokersResponse>> ListAsync(long? minOffset, MetadataImageService image)
    {
        var metadata = await Validation.ImageAsync(image, minOffset);
        return TypedResults.Ok(new BrokersResponse(metadata.Brokers.Values.OrderBy(b => b.Record.BrokerId).Select(Mapping.Broker).ToList(), metadata.Offset));
    }

    private static IBrokerGrain Broker(IGrainFactory grains, int id) => grains.GetGrain<IBrokerGrain>(id.ToString(CultureInfo.InvariantCulture));
}
