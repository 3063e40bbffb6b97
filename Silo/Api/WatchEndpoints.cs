using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Watch;

namespace OrleansMeta.Silo.Api;

/// <summary>A watch stream over the metadata log (Server-Sent Events), served by any silo from its own tail of the log.</summary>
public static class WatchEndpoints
{
    private const int MaxListItems = 1000;

    public static IEndpointRouteBuilder MapWatchEndpoints(this IEndpointRouteBuilder endpoints)
    {
        // The hub subscribes to the image as it is created: make that happen at start, not at the first watcher.
        endpoints.ServiceProvider.GetRequiredService<WatchHub>();
        endpoints.MapGet("/v1/watch", WatchAsync).WithTags("Metadata").WithName("Watch")
            .WithSummary("Server-Sent Events: every metadata log record from fromOffset on (id: the offset, event: the record type, data: a " +
                "WatchEvent), filtered by topics, topicPrefix, brokers, groups and kinds; keep-alive comments (progress events carrying the offset " +
                "passed when a filter skipped records). Without fromOffset, or when the log no longer holds it, the stream starts with a " +
                "snapshot of the current state (events snapshot-start, snapshot, snapshot-end with id: its offset). Last-Event-ID resumes " +
                "after that id and wins over fromOffset. A reader too far behind gets a cut-off event naming the offset to resume from.")
            .Produces<WatchEvent>(StatusCodes.Status200OK, "text/event-stream")
            .Problems(ApiDocs.Read);
        return endpoints;
    }

    private static async Task WatchAsync(
        HttpContext context,
        [FromQuery] string? fromOffset,
        [FromQuery] string[]? topics,
        [FromQuery] string? topicPrefix,
        [FromQuery] string[]? brokers,
        [FromQuery] string[]? kinds,
        [FromQuery] string[]? groups,
        [FromHeader(Name = "Last-Event-ID")] string? lastEventId,
        MetadataImageService image,
        IMetadataLog log,
        WatchHub hub,
        IOptions<WatchOptions> options,
        IHostApplicationLifetime lifetime,
        ILoggerFactory loggers)
    {
        var cancellationToken = context.RequestAborted;
        var selection = Selection(topics, topicPrefix, brokers, kinds, groups);
        var from = await StartAsync(fromOffset, lastEventId, image, log, cancellationToken);

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // Proxies that buffer would hold events back.
        await response.StartAsync(cancellationToken);

        // A stopping silo ends its streams, so it stops promptly; the clients resume on another silo.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        var session = new WatchSession(response, hub, log, selection, options.Value, loggers.CreateLogger(typeof(WatchSession)));
        try
        {
            await session.RunAsync(from, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The client went away or the silo is stopping: nothing more to say.
        }
        catch (Exception) when (response.HasStarted)
        {
            // The stream has begun: no problem body can follow. Ending it lets the client resume (from its last id) elsewhere.
            context.Abort();
        }
    }

    /// <summary>The first offset to send (null: start with a snapshot). <c>Last-Event-ID</c> (the last event the client
    /// received) wins over <c>fromOffset</c>: a browser's EventSource reconnects with the URL it started with.</summary>
    private static async Task<long?> StartAsync(string? fromOffset, string? lastEventId, MetadataImageService image, IMetadataLog log, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(lastEventId))
        {
            if (!long.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out var last))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                    $"The header 'Last-Event-ID' must be the id of an event this stream sent (an offset, 0 or greater); got '{lastEventId}'.");
            }

            await Validation.WithinHeadAsync(image, log, last, "Last-Event-ID", cancellationToken);
            return last + 1;
        }

        if (fromOffset is null)
        {
            return null;
        }

        if (!long.TryParse(fromOffset, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var from) || from < 1)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                $"The query parameter 'fromOffset' must be a log offset, 1 or greater (offsets start at 1); got '{fromOffset}'. Leave it out to start with a snapshot.");
        }

        // The next offset to be written may be asked for (a client that has read everything); beyond it, nothing exists.
        if (from - 1 > image.Current.Offset && await TryReadHeadAsync(log, cancellationToken) is { } head && from - 1 > head)
        {
            throw MetaException.Invalid(ErrorCodes.OffsetOutOfRange,
                $"fromOffset {from} is beyond the next offset to be written ({head + 1}): no such offset exists. Use an offset a write, a read or this stream returned.");
        }

        return from;
    }

    /// <summary>The log head, or null when storage cannot be read right now (the stream then simply waits for the offset).</summary>
    private static async Task<long?> TryReadHeadAsync(IMetadataLog log, CancellationToken cancellationToken)
    {
        try
        {
            return await log.GetHeadAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null;
        }
    }

    private static WatchSelection Selection(string[]? topics, string? topicPrefix, string[]? brokers, string[]? kinds, string[]? groups)
    {
        var topicSet = Names(topics, "topics", name => TopicRules.ValidateName(name), ErrorCodes.InvalidTopic, "name");

        if (topicPrefix is not null && (topicPrefix.Length == 0 || topicPrefix.Length > TopicRules.MaxNameLength
            || !topicPrefix.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidTopic,
                $"The query parameter 'topicPrefix' must be 1 to {TopicRules.MaxNameLength} of the characters topic names use (letters, digits, '.', '_', '-'); got '{topicPrefix}'.");
        }

        var brokerSet = new HashSet<int>();
        foreach (var id in Items(brokers, "brokers"))
        {
            if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var broker))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"The query parameter 'brokers' must list broker ids (integers, 0 or greater); got '{id}'.");
            }

            brokerSet.Add(broker);
        }

        var groupSet = Names(groups, "groups", GroupRules.ValidateGroupId, ErrorCodes.InvalidGroupId, "group id");

        var kindSet = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kind in Items(kinds, "kinds"))
        {
            if (!WatchSelection.AllKinds.Contains(kind, StringComparer.Ordinal))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                    $"The query parameter 'kinds' must list record types ({string.Join(", ", WatchSelection.AllKinds)}); got '{kind}'.");
            }

            kindSet.Add(kind);
        }

        return topicSet.Count == 0 && topicPrefix is null && brokerSet.Count == 0 && groupSet.Count == 0 && kindSet.Count == 0
            ? WatchSelection.All
            : new WatchSelection(kindSet, topicSet, topicPrefix, brokerSet, groupSet);
    }

    /// <summary>The values of a list parameter of names, each checked by <paramref name="validate"/>: a bad one is refused
    /// with <paramref name="code"/>, naming the parameter.</summary>
    private static HashSet<string> Names(string[]? values, string name, Action<string> validate, string code, string what)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in Items(values, name))
        {
            try
            {
                validate(item);
            }
            catch (MetaException e)
            {
                throw MetaException.Invalid(code, $"The query parameter '{name}' holds an invalid {what}: {e.Message}");
            }

            set.Add(item);
        }

        return set;
    }

    /// <summary>The values of a list parameter, given repeated (<c>topics=a&amp;topics=b</c>) or comma-separated.</summary>
    private static List<string> Items(string[]? values, string name)
    {
        var items = new List<string>();
        foreach (var value in values ?? [])
        {
            var parts = value.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Any(p => p.Length == 0))
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"The query parameter '{name}' has an empty item ('{value}'); list values without empty ones.");
            }

            items.AddRange(parts);
        }

        if (items.Count > MaxListItems)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"The query parameter '{name}' lists {items.Count} values; at most {MaxListItems} are accepted.");
        }

        return items;
    }
}
