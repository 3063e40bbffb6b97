using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>Topics: create, list, describe, delete, add partitions, describe and alter configs.</summary>
public static class TopicEndpoints
{
    public static IEndpointRouteBuilder MapTopicEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/topics").WithTags("Topics");
        group.MapPost("/", CreateAsync).WithName("CreateTopic")
            .WithSummary("Creates a topic; replicas and leaders are spread over brokers and racks unless an assignment is given. " +
                "With validateOnly, checks everything and answers 200 with the topic as it would be, writing nothing.")
            .Problems(ApiDocs.Write,
                (400, [ErrorCodes.InvalidTopic, ErrorCodes.InvalidPartitions, ErrorCodes.InvalidReplicationFactor, ErrorCodes.InvalidReplicaAssignment, ErrorCodes.InvalidConfig]),
                (409, [ErrorCodes.TopicAlreadyExists]))
            .NamesOwner<ITopicGrain>(context => context.Arguments.OfType<CreateTopicRequest>().FirstOrDefault()?.Name is { } name ? TopicKeys.For(name) : null);
        group.MapGet("/", ListAsync).WithName("ListTopics").Problems(ApiDocs.Read);
        group.MapGet("/{name}", DescribeAsync).WithName("DescribeTopic")
            .Problems(ApiDocs.Read, (400, [ErrorCodes.InvalidTopic]), (404, [ErrorCodes.UnknownTopicOrPartition]));
        group.MapDelete("/{name}", DeleteAsync).WithName("DeleteTopic")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidTopic]), (404, [ErrorCodes.UnknownTopicOrPartition]))
            .NamesTopicOwner();
        group.MapPost("/{name}/partitions", AddPartitionsAsync).WithName("AddPartitions")
            .WithSummary("Grows the topic to totalCount partitions. With validateOnly, checks everything and answers as if done, writing nothing.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidTopic, ErrorCodes.InvalidPartitions, ErrorCodes.InvalidReplicaAssignment]),
                (404, [ErrorCodes.UnknownTopicOrPartition]))
            .NamesTopicOwner();
        group.MapGet("/{name}/configs", DescribeConfigsAsync).WithName("DescribeTopicConfigs")
            .WithSummary("Every topic config this service knows, with the value in effect, whether it is the default, and its source (Kafka's DescribeConfigs).")
            .Problems(ApiDocs.Read, (400, [ErrorCodes.InvalidTopic]), (404, [ErrorCodes.UnknownTopicOrPartition]));
        group.MapPatch("/{name}/configs", AlterConfigsAsync).WithName("AlterTopicConfigs")
            .WithSummary("Sets topic configs; a null value removes a key. Unknown keys and bad values are refused. With validateOnly, writes nothing.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidTopic, ErrorCodes.InvalidConfig]), (404, [ErrorCodes.UnknownTopicOrPartition]))
            .NamesTopicOwner();
        endpoints.MapAlterTopicsConfigsEndpoint();
        return endpoints;
    }

    /// <summary>A write to the topic in the route that this silo forwarded names the owner of the topic's grain.</summary>
    private static RouteHandlerBuilder NamesTopicOwner(this RouteHandlerBuilder builder)
        => builder.NamesOwner<ITopicGrain>(context => context.HttpContext.Request.RouteValues["name"] is string name ? TopicKeys.For(name) : null);

    private static async Task<Results<Created<TopicResponse>, Ok<TopicResponse>>> CreateAsync(
        CreateTopicRequest request, IGrainFactory grains, MetadataImageService image)
    {
        TopicRules.ValidateNewName(request.Name);
        var change = await Topic(grains, request.Name).CreateAsync(
            new CreateTopic(request.Name, request.Partitions, request.ReplicationFactor, request.Configs, request.Assignment, request.ValidateOnly));
        return request.ValidateOnly
            ? TypedResults.Ok(Response(change, image))
            : TypedResults.Created($"/v1/topics/{Uri.EscapeDataString(request.Name)}", Response(change, image));
    }

    private static async Task<Ok<TopicsResponse>> ListAsync(long? minOffset, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        var metadata = await Validation.ImageAsync(image, log, minOffset, cancellationToken);
        var topics = metadata.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal)
            .Select(t => new TopicSummary(t.Topic.Name, t.Topic.TopicId, t.Partitions.Length, t.Topic.ReplicationFactor)).ToList();
        return TypedResults.Ok(new TopicsResponse(topics, metadata.Offset));
    }

    private static async Task<Ok<TopicResponse>> DescribeAsync(
        string name, long? minOffset, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        var metadata = await Validation.ImageAsync(image, log, minOffset, cancellationToken);
        return TypedResults.Ok(new TopicResponse(Mapping.Topic(Validation.Topic(metadata, name), metadata), metadata.Offset));
    }

    private static async Task<Ok<TopicConfigsResponse>> DescribeConfigsAsync(
        string name, long? minOffset, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        var metadata = await Validation.ImageAsync(image, log, minOffset, cancellationToken);
        var topic = Validation.Topic(metadata, name);
        return TypedResults.Ok(new TopicConfigsResponse(topic.Topic.Name, topic.Topic.TopicId, Mapping.Configs(topic.Topic), metadata.Offset));
    }

    private static async Task<Ok<DeleteTopicResponse>> DeleteAsync(string name, IGrainFactory grains)
    {
        TopicRules.ValidateName(name);
        var change = await Topic(grains, name).DeleteAsync(name);
        return TypedResults.Ok(new DeleteTopicResponse(name, change.Topic.TopicId, change.MetadataOffset));
    }

    private static async Task<Ok<TopicResponse>> AddPartitionsAsync(string name, AddPartitionsRequest request, IGrainFactory grains, MetadataImageService image)
    {
        TopicRules.ValidateName(name);
        var change = await Topic(grains, name).AddPartitionsAsync(name, request.TotalCount, request.Assignment, request.ValidateOnly);
        return TypedResults.Ok(Response(change, image));
    }

    // Answers with the configs resource, not the whole topic: a config change must not cost a walk over every
    // partition of the topic (Kafka's IncrementalAlterConfigs answers with an error code per resource only).
    private static async Task<Ok<TopicConfigsResponse>> AlterConfigsAsync(string name, AlterConfigsRequest request, IGrainFactory grains)
    {
        TopicRules.ValidateName(name);
        if (request.Configs is not { Count: > 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "Name at least one config to set (or to remove with null).");
        }

        var change = await Topic(grains, name).AlterConfigsAsync(name, request.Configs, request.ValidateOnly);
        return TypedResults.Ok(new TopicConfigsResponse(change.Topic.Name, change.Topic.TopicId, Mapping.Configs(change.Topic), change.MetadataOffset));
    }

    private static ITopicGrain Topic(IGrainFactory grains, string name) => grains.GetGrain<ITopicGrain>(TopicKeys.For(name));

    private static TopicResponse Response(TopicChange change, MetadataImageService image)
        => new(Mapping.Topic(change.Topic, image.Current), change.MetadataOffset);
}
