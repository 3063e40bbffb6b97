using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Client.Models;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Silo.Api;

/// <summary>Kafka's Metadata request, answered from this silo's image without touching a grain or the database.</summary>
public static class MetadataEndpoints
{
    public static IEndpointRouteBuilder MapMetadataEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/metadata", GetAsync).WithTags("Metadata").WithName("GetMetadata")
            .WithSummary("Brokers and, per partition, leader, leader epoch, replicas and ISR. topics=a,b limits the topics; minOffset reads your own writes.");
        return endpoints;
    }

    private static async Task<Ok<MetadataResponse>> GetAsync(string? topics, long? minOffset, MetadataImageService image)
    {
        var metadata = await Validation.ImageAsync(image, minOffset);
        var brokers = metadata.Brokers.Values.OrderBy(b => b.Record.BrokerId).Select(Mapping.Broker).ToList();
        List<TopicMetadata> result;
        if (string.IsNullOrEmpty(topics))
        {
            result = metadata.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal).Select(Describe).ToList();
        }
        else
        {
            result = [];
            foreach (var name in topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal))
            {
                result.Add(metadata.Topics.TryGetValue(name, out var topic)
                    ? Describe(topic)
                    : new TopicMetadata(name, Guid.Empty, ErrorCodes.UnknownTopicOrPartition, []));
            }
        }

        var controller = metadata.Controller is { } c ? new ControllerInfo(c.Silo, c.Epoch) : new ControllerInfo(null, 0);
        return TypedResults.Ok(new MetadataResponse(brokers, result, controller, metadata.Offset));
    }

    private static TopicMetadata Describe(TopicImage topic)
        => new(topic.Topic.Name, topic.Topic.TopicId, null, topic.Partitions.Select(Mapping.Partition).ToList());
}
