using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Placement;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Kafka's AlterPartition as brokers send it: one request carries every partition whose ISR the broker, as their
/// leader, wants changed. The broker epoch is checked once for the request (Kafka's first check); then each partition
/// is judged and written by its own grain exactly as a single AlterPartition is, so each gets its own outcome and one
/// refused partition never costs the others. Partitions are grouped by the silo that owns them and each group is
/// handed to a relay pinned to that silo (<see cref="IPartitionBatchGrain"/>): a request crosses to another silo
/// once per owning silo, not once per partition, and its changes reach storage together, where they share batches.
/// </summary>
public static class AlterPartitionsEndpoint
{
    /// <summary>The most partitions one request may name (a broker with more sends several requests).</summary>
    public const int MaxPartitions = 10_000;

    /// <summary>The most partitions one relay call carries.</summary>
    private const int RelayBatchSize = 1024;

    public static IEndpointRouteBuilder MapAlterPartitionsEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/v1/brokers/{id}/alter-partition", AlterPartitionsAsync).WithTags("Partitions").WithName("AlterPartitions")
            .WithSummary("A broker, as leader, changes the ISR of many partitions in one request (Kafka's AlterPartition): the broker epoch is " +
                "checked for the whole request, then each partition is a compare-and-set on its partition epoch with its own outcome " +
                $"(up to {MaxPartitions} partitions per request).")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidRequest, ErrorCodes.InvalidTopic]), (409, [ErrorCodes.StaleBrokerEpoch]));
        return endpoints;
    }

    private static async Task<Ok<AlterPartitionsResponse>> AlterPartitionsAsync(
        int id, AlterPartitionsRequest request, IGrainFactory grains, GrainLocator locator, MetadataImageService image, IMetadataLog log,
        CancellationToken cancellationToken)
    {
        Validation.NonNegative(id, "path parameter 'id' (the broker id)");
        ValidateShape(request);

        var metadata = image.Current;
        if (!Knows(metadata, id, request))
        {
            // A registration or a topic this silo has not applied yet, which the broker may have heard of from another
            // silo: judge on an image as new as the log, so "stale" and "unknown" are never answers of a lagging image.
            metadata = await image.WaitForAsync(await log.GetHeadAsync(cancellationToken), Validation.ImageWait, cancellationToken);
        }

        if (!metadata.Brokers.TryGetValue(id, out var broker) || broker.Record.BrokerEpoch != request.BrokerEpoch || broker.IsFenced)
        {
            throw MetaException.Conflict(ErrorCodes.StaleBrokerEpoch, broker is null
                ? $"Broker {id} is not registered; register it and send AlterPartition with the epoch the registration returned."
                : $"brokerEpoch {request.BrokerEpoch} is not the current, unfenced epoch of broker {id} (the current epoch is {broker.Record.BrokerEpoch}" +
                  $"{(broker.IsFenced ? ", fenced" : "")}); register again and resend.");
        }

        // One slot per partition of the request, filled by the relays' outcomes or, for unknown partitions, at once.
        var results = new AlterPartitionResult?[request.Topics.Sum(t => t.Partitions.Count)];
        var slots = new Dictionary<string, (int Slot, int Partition)>();
        var known = new List<(string Key, AlterPartition Command)>();
        var topicIds = new Guid?[request.Topics.Count];
        var slot = 0;
        for (var t = 0; t < request.Topics.Count; t++)
        {
            var topic = request.Topics[t];
            metadata.Topics.TryGetValue(topic.Topic, out var held);
            topicIds[t] = held?.Topic.TopicId;
            foreach (var item in topic.Partitions)
            {
                if (held is null || item.Partition >= held.Partitions.Length)
                {
                    results[slot++] = new AlterPartitionResult(item.Partition, null, ErrorCodes.UnknownTopicOrPartition, held is null
                        ? $"Topic '{topic.Topic}' does not exist (at metadata offset {metadata.Offset})."
                        : $"Topic '{topic.Topic}' has partitions 0 to {held.Partitions.Length - 1}; there is no partition {item.Partition}.");
                    continue;
                }

                var key = PartitionKeys.For(held.Topic.TopicId, item.Partition);
                slots[key] = (slot++, item.Partition);
                known.Add((key, new AlterPartition(id, request.BrokerEpoch, item.LeaderEpoch, item.PartitionEpoch, item.NewIsr, metadata.Offset)));
            }
        }

        var calls = OwnerShares.Of<IPartitionGrain, (string Key, AlterPartition Command)>(locator, known, k => k.Key, RelayBatchSize)
            .Select(share => OwnerShares.CallAsync(share.Items, items => grains.GetGrain<IPartitionBatchGrain>(share.RelayKey)
                .AlterAsync(new PartitionAlterBatch([.. items.Select(s => s.Key)], [.. items.Select(s => s.Command)]))));
        var current = image.Current;
        var offset = metadata.Offset;
        foreach (var (items, result, failure) in await Task.WhenAll(calls))
        {
            if (result is null)
            {
                // The relay's silo went away, refused the call or timed out: what each partition did is unknown (other
                // relays' partitions may have changed, so the request as a whole does not fail), and each partition's
                // state (a metadata read) tells whether its change was applied.
                var (code, retryable) = MetaException.Outcome(failure!);
                foreach (var (index, partition) in items.Select(k => slots[k.Key]))
                {
                    results[index] = new AlterPartitionResult(partition, null, code,
                        $"The silo owning this partition did not answer ({failure!.Message}); read the partition's metadata to see whether the change was applied, then retry.",
                        retryable);
                }

                continue;
            }

            foreach (var change in result.Changes)
            {
                results[slots[PartitionKeys.For(change.TopicId, change.State.Partition)].Slot] = new AlterPartitionResult(change.State.Partition, Mapping.Partition(change.State, current));
                offset = Math.Max(offset, change.MetadataOffset ?? 0);
            }

            foreach (var refused in result.Failures)
            {
                var (index, partition) = slots[refused.Partition];
                results[index] = new AlterPartitionResult(partition, null, refused.ErrorCode, refused.Message, refused.Retryable);
            }
        }

        var answer = new AlterPartitionTopicResult[request.Topics.Count];
        slot = 0;
        for (var t = 0; t < answer.Length; t++)
        {
            var partitions = new AlterPartitionResult[request.Topics[t].Partitions.Count];
            for (var p = 0; p < partitions.Length; p++)
            {
                partitions[p] = results[slot++]!;
            }

            answer[t] = new AlterPartitionTopicResult(request.Topics[t].Topic, topicIds[t], partitions);
        }

        return TypedResults.Ok(new AlterPartitionsResponse(answer, offset));
    }

    /// <summary>Whether the image accepts the sender's registration and holds every partition named, so no refusal it
    /// leads to can be the image's lag (a refusal is judged again on an image at the log head).</summary>
    private static bool Knows(MetadataImage metadata, int id, AlterPartitionsRequest request)
    {
        if (!metadata.Brokers.TryGetValue(id, out var broker) || broker.Record.BrokerEpoch != request.BrokerEpoch || broker.IsFenced)
        {
            return false;
        }

        foreach (var topic in request.Topics)
        {
            if (!metadata.Topics.TryGetValue(topic.Topic, out var held) || topic.Partitions.Any(p => p.Partition >= held.Partitions.Length))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Every field checked before anything is addressed, so a bad request changes nothing.</summary>
    private static void ValidateShape(AlterPartitionsRequest request)
    {
        if (request.BrokerEpoch < 0)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"$.brokerEpoch must be 0 or greater; got {request.BrokerEpoch}.");
        }

        if (request.Topics is not { Count: > 0 })
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "$.topics must name at least one topic with the partitions whose ISR should change.");
        }

        var topics = new HashSet<string>(StringComparer.Ordinal);
        var total = 0;
        for (var i = 0; i < request.Topics.Count; i++)
        {
            var topic = request.Topics[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"$.topics[{i}]");
            TopicRules.ValidateName(topic.Topic, $"{where}.topic");
            if (!topics.Add(topic.Topic))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where}.topic: '{topic.Topic}' appears more than once; give each topic once with all its partitions.");
            }

            if (topic.Partitions is not { Count: > 0 })
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where}.partitions must name at least one partition.");
            }

            total += topic.Partitions.Count;
            if (total > MaxPartitions)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                    $"The request names more than {MaxPartitions} partitions; send at most {MaxPartitions} per request.");
            }

            var partitions = new HashSet<int>();
            for (var j = 0; j < topic.Partitions.Count; j++)
            {
                var item = topic.Partitions[j];
                var at = string.Create(CultureInfo.InvariantCulture, $"{where}.partitions[{j}]");
                if (item.Partition < 0)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{at}.partition must be 0 or greater; got {item.Partition}.");
                }

                if (!partitions.Add(item.Partition))
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{at}.partition: partition {item.Partition} of '{topic.Topic}' appears more than once.");
                }

                if (item.LeaderEpoch < 0 || item.PartitionEpoch < 0)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, item.LeaderEpoch < 0
                        ? $"{at}.leaderEpoch must be 0 or greater; got {item.LeaderEpoch}."
                        : $"{at}.partitionEpoch must be 0 or greater; got {item.PartitionEpoch}.");
                }

                // What needs no partition state is checked here for the whole request; whether the members are
                // replicas of the partition, and include its leader, is each partition's own check.
                if (item.NewIsr.Count == 0 || item.NewIsr.Any(b => b < 0) || item.NewIsr.Distinct().Count() != item.NewIsr.Count)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                        $"{at}.newIsr must list distinct broker ids (0 or greater), the leader among them; got [{string.Join(", ", item.NewIsr)}].");
                }
            }
        }
    }
}
