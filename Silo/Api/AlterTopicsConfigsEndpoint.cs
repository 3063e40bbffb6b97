using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Kafka's IncrementalAlterConfigs for many topics in one request. Each topic's change is validated and written by its
/// own grain exactly as <c>PATCH /v1/topics/{name}/configs</c> does, with its own outcome (as Kafka answers an error per
/// resource); topics are grouped by the silo owning their grain, and each group goes to a relay pinned to that silo
/// (<see cref="ITopicBatchGrain"/>), so the request crosses to another silo once per owning silo.
/// </summary>
public static class AlterTopicsConfigsEndpoint
{
    /// <summary>The most topics one request may change.</summary>
    public const int MaxTopics = 10_000;

    private const int RelayBatchSize = 1024;

    public static IEndpointRouteBuilder MapAlterTopicsConfigsEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/configs", AlterAsync).WithTags("Topics").WithName("AlterTopicsConfigs")
            .WithSummary("Changes the configs of many topics in one request (Kafka's IncrementalAlterConfigs): each topic is validated and " +
                $"written on its own, with its own outcome (up to {MaxTopics} topics). A null value removes a key; validateOnly writes nothing.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidRequest, ErrorCodes.InvalidTopic]));
        return endpoints;
    }

    private static async Task<Ok<AlterTopicsConfigsResponse>> AlterAsync(
        AlterTopicsConfigsRequest request, IGrainFactory grains, GrainLocator locator, MetadataImageService image)
    {
        ValidateShape(request);
        var known = image.Current.Offset;
        var changes = request.Topics.Select((t, i) => (Index: i, Change: new TopicConfigChange(t.Topic, t.Configs)));
        var calls = OwnerShares.Of<ITopicGrain, (int Index, TopicConfigChange Change)>(locator, changes, c => TopicKeys.For(c.Change.Name), RelayBatchSize)
            .Select(share => OwnerShares.CallAsync(share.Items, items =>
                grains.GetGrain<ITopicBatchGrain>(share.RelayKey).AlterConfigsAsync([.. items.Select(c => c.Change)], request.ValidateOnly)));

        var results = new TopicConfigsResult[request.Topics.Count];
        var offset = known;
        foreach (var (items, outcomes, failure) in await Task.WhenAll(calls))
        {
            for (var j = 0; j < items.Count; j++)
            {
                var (index, change) = items[j];
                if (outcomes is null)
                {
                    var (code, retryable) = MetaException.Outcome(failure!);
                    results[index] = new TopicConfigsResult(change.Name, null, code,
                        $"The silo owning this topic did not answer ({failure!.Message}); read the topic's configs to see whether the change was applied, then retry.",
                        retryable);
                    continue;
                }

                var outcome = outcomes[j];
                results[index] = new TopicConfigsResult(change.Name, outcome.TopicId, outcome.ErrorCode, outcome.Message, outcome.Retryable);
                offset = Math.Max(offset, outcome.MetadataOffset ?? 0);
            }
        }

        return TypedResults.Ok(new AlterTopicsConfigsResponse(results, offset));
    }

    /// <summary>Every field checked before anything is addressed, so a bad request changes nothing. Config names and
    /// values are each topic's own check (per-topic <c>INVALID_CONFIG</c>, as in Kafka).</summary>
    private static void ValidateShape(AlterTopicsConfigsRequest request)
    {
        if (request.Topics is not { Count: > 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "$.topics must name at least one topic with the configs to change.");
        }

        if (request.Topics.Count > MaxTopics)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"$.topics names {request.Topics.Count} topics; send at most {MaxTopics} per request.");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < request.Topics.Count; i++)
        {
            var topic = request.Topics[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"$.topics[{i}]");
            TopicRules.ValidateName(topic.Topic, $"{where}.topic");
            if (!names.Add(topic.Topic))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where}.topic: '{topic.Topic}' appears more than once; give each topic once with all its changes.");
            }

            if (topic.Configs is not { Count: > 0 })
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where}.configs must name at least one config to set (or to remove with null).");
            }
        }
    }
}
