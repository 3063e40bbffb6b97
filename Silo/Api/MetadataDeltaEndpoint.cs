using System.Text.Json;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// <c>GET /v1/metadata/delta</c>: the Metadata answer's changes since an offset, from the image's change index
/// (<see cref="MetadataChanges"/>), so a broker keeps a large image current for the cost of what changed.
/// </summary>
internal static class MetadataDeltaEndpoint
{
    public static async Task<IResult> GetAsync(
        long? sinceOffset,
        string? topics,
        long? minOffset,
        bool? includeFenced,
        MetadataImageService image,
        IMetadataLog log,
        IOptions<SiloOptions> options,
        CancellationToken cancellationToken)
    {
        if (sinceOffset is not { } since)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                "The query parameter 'sinceOffset' is required: the metadata offset your view is at (a Metadata answer's metadataOffset).");
        }

        // The answer depends on the image holding at least `since` (and `minOffset`): refuse what was never written,
        // wait for what this silo has not applied yet.
        await Validation.WithinHeadAsync(image, log, since, "sinceOffset", cancellationToken);
        if (minOffset is { } min)
        {
            await Validation.WithinHeadAsync(image, log, min, "minOffset", cancellationToken);
        }

        var metadata = await image.WaitForAsync(Math.Max(since, minOffset ?? 0), Validation.ImageWait, cancellationToken);
        var response = Build(metadata, since, topics, includeFenced ?? false, options.Value.ClusterId);
        return Results.Bytes(JsonSerializer.SerializeToUtf8Bytes(response, JsonSerializerOptions.Web), "application/json");
    }

    internal static MetadataDeltaResponse Build(MetadataImage metadata, long since, string? topics, bool includeFenced, string clusterId)
    {
        var changes = metadata.Changes;
        var controller = metadata.Controller is { } c ? new ControllerInfo(c.Silo, c.Epoch) : new ControllerInfo(null, 0);
        if (since < changes.Floor)
        {
            return new MetadataDeltaResponse(since, metadata.Offset, changes.Floor, [], [], [], [], controller)
            {
                ClusterId = clusterId,
                Full = MetadataEndpoints.Build(metadata, topics, includeFenced, clusterId),
            };
        }

        var brokers = changes.BrokerChangedAt.Where(kv => kv.Value > since && metadata.Brokers.ContainsKey(kv.Key))
            .Select(kv => metadata.Brokers[kv.Key]).OrderBy(b => b.Record.BrokerId).Select(Mapping.Broker).ToList();
        var removed = changes.RemovedBrokers.Where(kv => kv.Value > since).Select(kv => kv.Key).Order().ToList();

        HashSet<string>? wanted = string.IsNullOrEmpty(topics)
            ? null
            : new(topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.Ordinal);

        // Few changes since N is the common case: the index yields only topics changed after N, newest first, and
        // each costs a pass over its own partitions' offsets. With a topic list, only the listed topics are looked at.
        var changedNames = wanted is null
            ? changes.TopicsChangedAfter(since)
            : wanted.Where(name => changes.Topics.TryGetValue(name, out var t) && t.LastChangedAt > since);
        var changed = new List<TopicDelta>();
        foreach (var name in changedNames)
        {
            if (metadata.Topics.TryGetValue(name, out var topic) && changes.Topics.TryGetValue(name, out var at))
            {
                changed.Add(Describe(topic, at, since, metadata));
            }
        }

        changed.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var deleted = changes.DeletedAfter(since)
            .Where(t => wanted is null || wanted.Contains(t.Name))
            .Select(t => new DeletedTopic(t.Name, t.TopicId, t.Offset))
            .ToList();
        return new MetadataDeltaResponse(since, metadata.Offset, changes.Floor, brokers, removed, changed, deleted, controller) { ClusterId = clusterId };
    }

    private static TopicDelta Describe(TopicImage topic, TopicChanges at, long since, MetadataImage metadata)
    {
        var partitions = new List<PartitionInfo>();
        var created = at.TopicId != topic.Topic.TopicId || at.CreatedAt > since;
        foreach (var state in topic.Partitions)
        {
            if (created || state.Partition >= at.PartitionChangedAt.Length || at.PartitionChangedAt[state.Partition] > since)
            {
                partitions.Add(Mapping.Partition(state, metadata));
            }
        }

        return new TopicDelta(topic.Topic.Name, topic.Topic.TopicId, topic.Partitions.Length, partitions)
        {
            IsInternal = TopicRules.IsInternal(topic.Topic.Name),
        };
    }
}
