using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>AlterPartition (ISR changes from the leader) and leader elections.</summary>
public static class PartitionEndpoints
{
    public static IEndpointRouteBuilder MapPartitionEndpoints(this IEndpointRouteBuilder endpoints)
    {
        // No route constraint on {partition}: "x" or an out-of-range number is a bad parameter (400), not a missing endpoint.
        endpoints.MapPost("/v1/topics/{name}/partitions/{partition}/isr", AlterPartitionAsync).WithTags("Partitions").WithName("AlterPartition")
            .WithSummary("The partition leader changes the ISR: a compare-and-set on the partition epoch with its leader and broker epochs. " +
                $"An answer that another silo forwarded names the partition's owner in the {RoutingHeaders.Owner} header.")
            .Problems(ApiDocs.Write,
                (400, [ErrorCodes.InvalidTopic, ErrorCodes.IneligibleReplica]),
                (404, [ErrorCodes.UnknownTopicOrPartition]),
                (409, [ErrorCodes.StaleBrokerEpoch, ErrorCodes.FencedLeaderEpoch, ErrorCodes.NotLeaderOrFollower, ErrorCodes.InvalidUpdateVersion]));
        endpoints.MapPost("/v1/elections", ElectAsync).WithTags("Partitions").WithName("ElectLeaders")
            .WithSummary("Runs a preferred or unclean leader election for the given partitions (preferred: all partitions when none are given). " +
                "Per-partition outcomes carry ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.")
            .Problems(ApiDocs.Write);
        endpoints.MapAlterPartitionsEndpoint();
        return endpoints;
    }

    private static async Task<Ok<PartitionResponse>> AlterPartitionAsync(
        string name, int partition, AlterPartitionRequest request, IGrainFactory grains, MetadataImageService image, IMetadataLog log,
        HttpContext http, CancellationToken cancellationToken)
    {
        Validation.NonNegative(partition, "path parameter 'partition'");
        TopicRules.ValidateName(name);
        var metadata = image.Current;
        if (!metadata.Topics.TryGetValue(name, out var held) || partition >= held.Partitions.Length)
        {
            // "Unknown" is only an answer on an image as new as the log: this silo may not have applied the creation
            // the leader already heard about from another silo.
            metadata = await image.WaitForAsync(await log.GetHeadAsync(cancellationToken), Validation.ImageWait, cancellationToken);
        }

        var topic = Validation.Topic(metadata, name);
        if (partition >= topic.Partitions.Length)
        {
            throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"Topic '{name}' has partitions 0 to {topic.Partitions.Length - 1}; there is no partition {partition}.");
        }

        var key = PartitionKeys.For(topic.Topic.TopicId, partition);
        var change = await grains.GetGrain<IPartitionGrain>(key).AlterPartitionAsync(
            new AlterPartition(request.LeaderId, request.BrokerEpoch, request.LeaderEpoch, request.PartitionEpoch, request.NewIsr, metadata.Offset));
        OwnerRouting.NameOwnerIfForwarded<IPartitionGrain>(http, key);
        return TypedResults.Ok(new PartitionResponse(change.Topic, Mapping.Partition(change.State, image.Current), change.MetadataOffset ?? metadata.Offset));
    }

    private static async Task<Ok<ElectionResponse>> ElectAsync(ElectionRequest request, IGrainFactory grains, MetadataImageService image)
    {
        var kind = request.Type switch
        {
            "preferred" => PartitionCommandKind.Preferred,
            "unclean" => PartitionCommandKind.Unclean,
            _ => throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"Election type '{request.Type}' is not known; use 'preferred' or 'unclean'."),
        };
        var partitions = request.Partitions?.SelectMany(t => t.Partitions.Select(p => new PartitionRef(t.Topic, p))).ToList();
        if (partitions is { Count: 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "The election names no partitions; omit 'partitions' to elect preferred leaders everywhere.");
        }

        var known = image.Current.Offset;
        var changes = await grains.GetGrain<IControllerGrain>(IControllerGrain.Key).ElectAsync(kind, partitions, known);
        var results = changes.Select(c => new ElectionResult(c.Topic, c.State.Partition, c.State.Leader, c.State.LeaderEpoch, c.ErrorCode, c.Message)).ToList();
        var offset = changes.Select(c => c.MetadataOffset ?? 0).DefaultIfEmpty(known).Max();
        return TypedResults.Ok(new ElectionResponse(results, Math.Max(offset, known)));
    }
}
