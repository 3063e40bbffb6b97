using System.Collections.Concurrent;
using System.Text.Json;
using OrleansMeta.Contracts;
using Microsoft.Extensions.Options;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Silo.Api;

/// <summary>Kafka's Metadata request, answered from this silo's image without touching a grain or the database.</summary>
public static class MetadataEndpoints
{
    public static IEndpointRouteBuilder MapMetadataEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/metadata", GetAsync).WithTags("Metadata").WithName("GetMetadata")
            .WithSummary("The cluster id, the controller, unfenced brokers (all with includeFenced=true) and, per partition, leader, leader epoch, " +
                "replicas, ISR and offline replicas. topics=a,b limits the topics; minOffset reads your own writes.")
            .Produces<MetadataResponse>()
            .Problems(ApiDocs.Read);
        endpoints.MapGet("/v1/metadata/delta", MetadataDeltaEndpoint.GetAsync).WithTags("Metadata").WithName("GetMetadataDelta")
            .WithSummary("What changed in the Metadata answer after sinceOffset: brokers changed or removed, topics created or with changed " +
                "partitions (only those partitions), topics deleted, and the offset the delta brings you to. When this silo cannot answer " +
                "since that offset, `full` holds the whole Metadata answer instead. topics=a,b limits the topics; minOffset reads your own writes; " +
                "includeFenced shapes the full answer.")
            .Produces<MetadataDeltaResponse>()
            .Problems(ApiDocs.Read);
        return endpoints;
    }

    private static async Task<IResult> GetAsync(
        string? topics,
        long? minOffset,
        bool? includeFenced,
        MetadataImageService image,
        IMetadataLog log,
        MetadataResponseCache cache,
        IOptions<SiloOptions> options,
        CancellationToken cancellationToken)
    {
        var metadata = await Validation.ImageAsync(image, log, minOffset, cancellationToken);
        var all = includeFenced ?? false;

        // The image is immutable, so the answer for one offset and query is serialised once and then served as bytes.
        var body = cache.GetOrAdd(metadata.Offset, all, topics ?? "", () =>
            JsonSerializer.SerializeToUtf8Bytes(Build(metadata, topics, all, options.Value.ClusterId), JsonSerializerOptions.Web));
        return Results.Bytes(body, "application/json");
    }

    internal static MetadataResponse Build(MetadataImage metadata, string? topics, bool includeFenced, string clusterId)
    {
        // Kafka lists the brokers clients may use: unfenced ones (controlled shutdown included, it still serves).
        var brokers = metadata.Brokers.Values.Where(b => includeFenced || !b.IsFenced).OrderBy(b => b.Record.BrokerId).Select(Mapping.Broker).ToList();
        List<TopicMetadata> result;
        if (string.IsNullOrEmpty(topics))
        {
            result = metadata.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal).Select(t => Describe(t, metadata)).ToList();
        }
        else
        {
            result = [];
            foreach (var name in topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal))
            {
                result.Add(metadata.Topics.TryGetValue(name, out var topic)
                    ? Describe(topic, metadata)
                    : new TopicMetadata(name, Guid.Empty, ErrorCodes.UnknownTopicOrPartition, []) { IsInternal = TopicRules.IsInternal(name) });
            }
        }

        var controller = metadata.Controller is { } c ? new ControllerInfo(c.Silo, c.Epoch) : new ControllerInfo(null, 0);
        return new MetadataResponse(brokers, result, controller, metadata.Offset) { ClusterId = clusterId };
    }

    private static TopicMetadata Describe(TopicImage topic, MetadataImage metadata)
        => new(topic.Topic.Name, topic.Topic.TopicId, null, topic.Partitions.Select(p => Mapping.Partition(p, metadata)).ToList())
        {
            IsInternal = TopicRules.IsInternal(topic.Topic.Name),
        };
}

/// <summary>Serialised metadata answers for the newest image offset only (older ones are dropped as the image moves).</summary>
public sealed class MetadataResponseCache
{
    /// <summary>Distinct topic lists cached per offset; beyond this, answers are built per request.</summary>
    private const int MaxEntries = 1024;

    private Entry _entry = Entry.For(-1);

    /// <summary>The answer for <paramref name="topics"/> at <paramref name="offset"/>, with or without fenced brokers
    /// (kept apart rather than in a combined key, so the common request allocates nothing to look its answer up).</summary>
    public byte[] GetOrAdd(long offset, bool includeFenced, string topics, Func<byte[]> build)
    {
        var entry = Volatile.Read(ref _entry);
        if (entry.Offset != offset)
        {
            if (offset < entry.Offset)
            {
                return build();
            }

            var fresh = Entry.For(offset);
            entry = Interlocked.CompareExchange(ref _entry, fresh, entry) == entry ? fresh : Volatile.Read(ref _entry);
            if (entry.Offset != offset)
            {
                return build();
            }
        }

        var bodies = includeFenced ? entry.WithFenced : entry.Bodies;
        if (bodies.TryGetValue(topics, out var body))
        {
            return body;
        }

        body = build();
        if (bodies.Count < MaxEntries)
        {
            bodies.TryAdd(topics, body);
        }

        return body;
    }

    private sealed record Entry(long Offset, ConcurrentDictionary<string, byte[]> Bodies, ConcurrentDictionary<string, byte[]> WithFenced)
    {
        public static Entry For(long offset) => new(offset, new(StringComparer.Ordinal), new(StringComparer.Ordinal));
    }
}
