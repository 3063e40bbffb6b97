using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Brokers' reports of their partitions' log offsets, for consumer-group lag and resets to earliest/latest. A report is
/// checked against this silo's metadata image (the broker's epoch, who leads each partition), applied here, and handed
/// to <see cref="LogOffsetsFanOut"/>, which passes it on to every other silo in the background (the broker's request
/// does not wait for them), so every silo's groups compute lag from memory.
/// </summary>
public static class LogOffsetsEndpoints
{
    /// <summary>The silo-to-silo path reports are passed on to (under <see cref="SiloEndpoints.Prefix"/>).</summary>
    internal const string PeerPath = "/log-offsets";

    public static IEndpointRouteBuilder MapLogOffsetsEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGroup("/v1/brokers").WithTags("Brokers").MapPut("/{id}/log-offsets", ReportAsync).WithName("ReportLogOffsets")
            .WithSummary("A broker reports the log start and end offsets of partitions it leads (every few seconds, batched), for consumer-group " +
                "lag and offset resets to earliest/latest. Partitions it does not lead are skipped and counted, never refused.")
            .Problems(ApiDocs.Write, (400, [ErrorCodes.InvalidRequest, ErrorCodes.InvalidTopic]), (404, [ErrorCodes.BrokerIdNotRegistered]),
                (409, [ErrorCodes.StaleBrokerEpoch]));
        return endpoints;
    }

    /// <summary>The silo-to-silo side, mapped outside the public API's filters.</summary>
    public static IEndpointRouteBuilder MapLogOffsetsPeerEndpoint(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSiloGroup().MapPost(PeerPath, ApplyFromPeer);
        return endpoints;
    }

    private static async Task<Ok<LogOffsetsReportResponse>> ReportAsync(
        int id, LogOffsetsReport report, MetadataImageService image, IMetadataLog log, LogOffsetsTable table, LogOffsetsFanOut fanOut,
        CancellationToken cancellationToken)
    {
        Validation.NonNegative(id, "path parameter 'id' (the broker id)");
        ValidateShape(report);
        var metadata = image.Current;
        if (!metadata.Brokers.TryGetValue(id, out var broker) || broker.Record.BrokerEpoch < report.BrokerEpoch)
        {
            // Registered a moment ago: decide on an image that holds the registration.
            metadata = await image.WaitForAsync(await log.GetHeadAsync(cancellationToken), Validation.ImageWait, cancellationToken);
        }

        if (!metadata.Brokers.TryGetValue(id, out broker))
        {
            throw MetaException.NotFound(ErrorCodes.BrokerIdNotRegistered, $"Broker {id} is not registered; register it before it reports log offsets.");
        }

        if (broker.Record.BrokerEpoch != report.BrokerEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.StaleBrokerEpoch,
                $"brokerEpoch {report.BrokerEpoch} is not broker {id}'s current epoch {broker.Record.BrokerEpoch}; report with the epoch the registration returned.");
        }

        var entries = new List<LogOffsetsEntry>();
        int notLeader = 0, unknown = 0;
        foreach (var topic in report.Topics)
        {
            if (!metadata.Topics.TryGetValue(topic.Topic, out var topicImage))
            {
                unknown += topic.Partitions.Count;
                continue;
            }

            foreach (var partition in topic.Partitions)
            {
                if (partition.Partition >= topicImage.Partitions.Length)
                {
                    unknown++;
                }
                else if (topicImage.Partitions[partition.Partition] is var state && state.Leader != id)
                {
                    notLeader++;
                }
                else
                {
                    entries.Add(new LogOffsetsEntry(topicImage.Topic.TopicId, partition.Partition,
                        new LogOffsets(partition.LogStartOffset, partition.LogEndOffset, state.LeaderEpoch)));
                }
            }
        }

        var accepted = table.Apply(entries);
        notLeader += entries.Count - accepted;

        // Best effort and in the background: a silo that misses a report gets the next one, a few seconds later.
        fanOut.Enqueue(entries);

        return TypedResults.Ok(new LogOffsetsReportResponse(accepted, notLeader, unknown, metadata.Offset));
    }

    private static Ok<int> ApplyFromPeer(LogOffsetsEntry[] entries, LogOffsetsTable table) => TypedResults.Ok(table.Apply(entries));

    /// <summary>Every field checked before anything is taken, so a bad report changes nothing.</summary>
    private static void ValidateShape(LogOffsetsReport report)
    {
        if (report.Topics is null)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, "$.topics is required: the topics whose partitions' offsets are reported.");
        }

        for (var i = 0; i < report.Topics.Count; i++)
        {
            var topic = report.Topics[i];
            var where = string.Create(CultureInfo.InvariantCulture, $"$.topics[{i}]");
            if (topic is null)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where} is null; give a topic and its partitions.");
            }

            TopicRules.ValidateName(topic.Topic, $"{where}.topic");

            if (topic.Partitions is null)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{where}.partitions is required.");
            }

            for (var j = 0; j < topic.Partitions.Count; j++)
            {
                var partition = topic.Partitions[j];
                var at = string.Create(CultureInfo.InvariantCulture, $"{where}.partitions[{j}]");
                if (partition is null)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{at} is null; give partition, logStartOffset and logEndOffset.");
                }

                if (partition.Partition < 0)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{at}.partition must be 0 or greater; got {partition.Partition}.");
                }

                if (partition.LogStartOffset < 0)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"{at}.logStartOffset must be 0 or greater; got {partition.LogStartOffset}.");
                }

                if (partition.LogEndOffset < partition.LogStartOffset)
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                        $"{at}.logEndOffset ({partition.LogEndOffset}) must not be below logStartOffset ({partition.LogStartOffset}).");
                }
            }
        }
    }
}
