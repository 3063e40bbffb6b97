using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Client.Models;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;

namespace OrleansMeta.Silo.Api;

/// <summary>Topics: create, list, describe, delete, add partitions, alter configs.</summary>
public static class TopicEndpoints
{
    public static IEndpointRouteBuilder MapTopicEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/v1/topics").WithTags("Topics");
        group.MapPost("/", CreateAsync).WithName("CreateTopic")
            .WithSummary("Creates a topic; replicas and leaders are spread over brokers and racks unless an assignment is given.");
        group.MapGet("/", ListAsync).WithName("ListTopics");
        group.MapGet("/{name}", DescribeAsync).WithName("DescribeTopic");
        group.MapDelete("/{name}", DeleteAsync).WithName("DeleteTopic");
        group.MapPost("/{name}/partitions", AddPartitionsAsync).WithName("AddPartitions");
        group.MapPatch("/{name}/configs", AlterConfigsAsync).WithName("AlterTopicConfigs")
            .WithSummary("Sets topic configs; a null value removes a key. Unknown keys and bad values are refused.");
        return endpoints;
    }

    private static async Task<Created<TopicResponse>> CreateAsync(CreateTopicRequest request, IGrainFactory grains, MetadataImageService image)
    {
        TopicRules.ValidateName(request.Name);
        var change = await grains.GetGrain<ITopicGrain>(request.Name)
            .CreateAsync(new CreateTopic(request.Name, request.Partitions, request.ReplicationFactor, request.Configs, request.Assignment));
        return TypedResults.Created($"/v1/topics/{Uri.EscapeDataString(request.Name)}", Response(change, image));
    }

    private static async Task<Ok<TopicsResponse>> ListAsync(long? minOffset, MetadataImageService image)
    {
        var metadata = await Validation.ImageAsync(image, minOffset);
        var topics = metadata.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal)
            .Select(t => new TopicSummary(t.Topic.Name, t.Topic.TopicId, t.Partitions.Length, t.Topic.ReplicationFactor)).ToList();
        return TypedResults.Ok(new TopicsResponse(topics, metadata.Offset));
    }

    private static async Task<Ok<TopicResponse>> DescribeAsync(string name, long? minOffset, MetadataImageService image)
    {
        var metadata = await Validation.ImageAsync(image, minOffset);
        return TypedResults.Ok(new TopicResponse(Mapping.Topic(Validation.Topic(metadata, name)), metadata.Offset));
    }

    private static async Task<Ok<DeleteTopicResponse>> DeleteAsync(string name, IGrainFactory grains)
    {
        TopicRules.ValidateName(name);
        var change = await grains.GetGrain<ITopicGrain>(name).DeleteAsync();
        return TypedResults.Ok(new DeleteTopicResponse(name, change.Topic.TopicId, change.MetadataOffset));
    }

    private static async Task<Ok<TopicResponse>> AddPartitionsAsync(string name, AddPartitionsRequest request, IGrainFactory grains, MetadataImageService image)
    {
        TopicRules.ValidateName(name);
        var change = await grains.GetGrain<ITopicGrain>(name).AddPartitionsAsync(request.TotalCount, request.Assignment);
        return TypedResults.Ok(Response(change, image));
    }

    private static async Task<Ok<TopicResponse>> AlterConfigsAsync(string name, AlterConfigsRequest request, IGrainFactory grains, MetadataImageService image)
    {
        TopicRules.ValidateName(name);
        if (request.Configs is not { Count: > 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "Name at least one config to set (or to remove with null).");
        }

        var change = await grains.GetGrain<ITopicGrain>(name).AlterConfigsAsync(request.Configs);
        return TypedResults.Ok(Response(change, image));
    }

    private static TopicResponse Response(TopicChange change, MetadataImageService image)
        => new(Mapping.Topic(change.Topic, image.Current.Topics.GetValueOrDefault(change.Topic.Name)), change.MetadataOffset);
}
