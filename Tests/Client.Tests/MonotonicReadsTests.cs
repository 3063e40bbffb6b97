using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Client.Internal;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>
/// <see cref="MetaClientOptions.MonotonicReads"/>: the client remembers the highest metadata offset of any answer and
/// sends it as <c>minOffset</c> with every metadata read, so no read is answered from older metadata than the client
/// has seen or written. The fake silo's image is at offset 10 and answers a read at its <c>minOffset</c> when given (as
/// a silo that waited for it does).
/// </summary>
public sealed class MonotonicReadsTests : IAsyncLifetime
{
    private const long ImageOffset = 10;
    private const long WriteOffset = 100;
    private static readonly TopicDescription Orders = Samples.Topic("orders", Samples.TopicId, Samples.Partition(0, 1, 4));
    private FakeSilo _silo = null!;

    public async Task InitializeAsync() => _silo = await FakeSilo.StartAsync(app =>
    {
        app.MapPost("/v1/topics", () => Results.Created("/v1/topics/orders", new TopicResponse(Orders, WriteOffset)));
        app.MapGet("/v1/brokers", (long? minOffset) => Results.Ok(new BrokersResponse([Samples.Broker], At(minOffset))));
        app.MapGet("/v1/topics", (long? minOffset) => Results.Ok(new TopicsResponse([], At(minOffset))));
        app.MapGet("/v1/topics/{name}", (long? minOffset) => Results.Ok(new TopicResponse(Orders, At(minOffset))));
        app.MapGet("/v1/topics/{name}/configs", (long? minOffset) => Results.Ok(new TopicConfigsResponse("orders", Samples.TopicId, [], At(minOffset))));
        app.MapGet("/v1/metadata", (long? minOffset) => Results.Ok(Samples.Metadata(At(minOffset))));
        app.MapGet("/v1/metadata/delta", (long sinceOffset, long? minOffset) => Results.Ok(new MetadataDeltaResponse(
            sinceOffset, Math.Max(sinceOffset, At(minOffset)), 0, [], [], [], [], new ControllerInfo("silo-0", 7))));
        app.MapGet("/v1/groups/{id}/offsets", (string id) => Results.Ok(new GroupOffsetsResponse(id, [])));
        app.MapGet("/v1/groups", () => Results.Ok(new GroupsResponse([], [])));
        app.MapGet("/v1/cluster", () => Results.Ok(new ClusterInfo("meta-test", 1, DateTimeOffset.UnixEpoch, null, [])));
    });

    public async Task DisposeAsync() => await _silo.DisposeAsync();

    /// <summary>Every read that takes <c>minOffset</c>, and the path it is sent to without one.</summary>
    public static TheoryData<string, string> MetadataReads => new()
    {
        { "ListBrokers", "/v1/brokers" },
        { "ListTopics", "/v1/topics" },
        { "DescribeTopic", "/v1/topics/orders" },
        { "DescribeTopicConfigs", "/v1/topics/orders/configs" },
        { "GetMetadata", "/v1/metadata?topics=orders" },
        { "GetMetadataDelta", "/v1/metadata/delta?sinceOffset=5" },
    };

    [Theory]
    [MemberData(nameof(MetadataReads))]
    public async Task After_a_write_a_metadata_read_carries_the_writes_offset_as_min_offset(string read, string path)
    {
        using var client = Samples.Client(_silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        await ReadAsync(client, read);

        Assert.Equal(WriteOffset, client.SeenMetadataOffset);
        Assert.Equal(path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "minOffset=100", LastTarget);
    }

    [Theory]
    [MemberData(nameof(MetadataReads))]
    public async Task With_monotonic_reads_off_no_read_carries_a_min_offset_the_caller_did_not_give(string read, string path)
    {
        using var client = Samples.Client(o => o.MonotonicReads = false, _silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        var answeredAt = await ReadAsync(client, read);

        Assert.Equal(path, LastTarget);
        Assert.Equal(ImageOffset, answeredAt); // older than the write: what monotonic reads prevent
        Assert.Equal(WriteOffset, client.SeenMetadataOffset); // still tracked
    }

    [Fact]
    public async Task A_fresh_client_sends_no_min_offset_and_then_the_offset_its_first_read_was_answered_at()
    {
        using var client = Samples.Client(_silo.Url);

        await client.ListTopicsAsync();
        Assert.Equal("/v1/topics", LastTarget);
        Assert.Equal(ImageOffset, client.SeenMetadataOffset);

        await client.ListBrokersAsync();
        Assert.Equal("/v1/brokers?minOffset=10", LastTarget);
    }

    [Fact]
    public async Task An_explicit_min_offset_below_the_seen_one_is_raised_and_one_above_it_is_sent_as_given()
    {
        using var client = Samples.Client(_silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        await client.DescribeTopicAsync("orders", minOffset: 40);
        Assert.Equal("/v1/topics/orders?minOffset=100", LastTarget);

        await client.DescribeTopicAsync("orders", minOffset: 150);
        Assert.Equal("/v1/topics/orders?minOffset=150", LastTarget);
        Assert.Equal(150, client.SeenMetadataOffset); // the answer came from offset 150

        using var off = Samples.Client(o => o.MonotonicReads = false, _silo.Url);
        await off.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));
        await off.DescribeTopicAsync("orders", minOffset: 40);
        Assert.Equal("/v1/topics/orders?minOffset=40", LastTarget);
    }

    [Fact]
    public async Task A_delta_adds_the_seen_offset_only_when_it_is_beyond_the_since_offset()
    {
        using var client = Samples.Client(_silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        await client.GetMetadataDeltaAsync(120);
        Assert.Equal("/v1/metadata/delta?sinceOffset=120", LastTarget); // the silo waits for 120 anyway

        await client.GetMetadataDeltaAsync(60, ["orders"], includeFenced: true);
        Assert.Equal("/v1/metadata/delta?sinceOffset=60&topics=orders&includeFenced=true&minOffset=120", LastTarget);
    }

    [Fact]
    public async Task The_seen_offset_never_goes_down_when_an_answer_carries_a_lower_one()
    {
        using var client = Samples.Client(o => o.MonotonicReads = false, _silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        await client.ListTopicsAsync(); // answered at 10

        Assert.Equal(WriteOffset, client.SeenMetadataOffset);
    }

    [Fact]
    public async Task Group_and_cluster_reads_never_carry_a_min_offset()
    {
        using var client = Samples.Client(_silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        await client.FetchOffsetsAsync("g");
        await client.ListGroupsAsync();
        await client.GetClusterAsync();

        Assert.Equal(["/v1/groups/g/offsets", "/v1/groups", "/v1/cluster"], _silo.Requests.Skip(1).Select(r => r.RawTarget));
    }

    [Fact]
    public async Task A_silo_that_cannot_reach_the_seen_offset_in_time_is_left_for_the_next_one()
    {
        await using var lagging = await FakeSilo.StartAsync(app =>
        {
            app.MapPost("/v1/topics", () => Results.Created("/v1/topics/orders", new TopicResponse(Orders, WriteOffset)));
            app.MapGet("/v1/topics/{name}", (long? minOffset) => minOffset > ImageOffset
                ? ErrorTests.Problem(504, ErrorCodes.OffsetNotAvailable, true, "This silo's metadata has reached offset 10, not 100.")
                : Results.Ok(new TopicResponse(Orders, ImageOffset)));
        });
        using var client = Samples.Client(lagging.Url, _silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        var described = await client.DescribeTopicAsync("orders");

        Assert.Equal(WriteOffset, described.MetadataOffset);
        Assert.Equal("/v1/topics/orders?minOffset=100", lagging.Requests.Single(r => r.Method == "GET").RawTarget);
        Assert.Equal("/v1/topics/orders?minOffset=100", LastTarget);
    }

    [Fact]
    public async Task When_every_silo_lags_too_long_the_read_fails_with_offset_not_available()
    {
        await using var lagging = await FakeSilo.StartAsync(app =>
        {
            app.MapPost("/v1/topics", () => Results.Created("/v1/topics/orders", new TopicResponse(Orders, WriteOffset)));
            app.MapGet("/v1/topics/{name}", (long? minOffset) => minOffset > ImageOffset
                ? ErrorTests.Problem(504, ErrorCodes.OffsetNotAvailable, true)
                : Results.Ok(new TopicResponse(Orders, ImageOffset)));
        });
        using var client = Samples.Client(o => o.MaxAttempts = 3, lagging.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.DescribeTopicAsync("orders"));

        Assert.Equal((ErrorCodes.OffsetNotAvailable, true), (error.Code, error.IsRetryable));
        Assert.Equal(4, lagging.Hits); // the write and three attempts
        Assert.Equal(WriteOffset, client.SeenMetadataOffset); // kept: the next read waits for it again
    }

    [Fact]
    public async Task A_seen_offset_the_log_no_longer_holds_fails_one_read_and_is_then_forgotten()
    {
        var rewritten = 0;
        await using var silo = await FakeSilo.StartAsync(app =>
        {
            app.MapPost("/v1/topics", () => Results.Created("/v1/topics/orders", new TopicResponse(Orders, WriteOffset)));
            app.MapGet("/v1/topics", (long? minOffset) => Volatile.Read(ref rewritten) == 1 && minOffset > ImageOffset
                ? ErrorTests.Problem(400, ErrorCodes.OffsetOutOfRange, false, $"minOffset {minOffset} is beyond the metadata log head {ImageOffset}.")
                : Results.Ok(new TopicsResponse([], At(minOffset))));
        });
        using var client = Samples.Client(silo.Url);
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));
        Volatile.Write(ref rewritten, 1); // e.g. an asynchronous replica without the write was promoted

        var error = await Assert.ThrowsAsync<MetaApiException>(() => client.ListTopicsAsync());
        Assert.Equal((ErrorCodes.OffsetOutOfRange, true), (error.Code, error.IsRetryable));
        Assert.Contains("has seen metadata offset 100", error.Detail, StringComparison.Ordinal);
        Assert.Equal(0, client.SeenMetadataOffset);

        var topics = await client.ListTopicsAsync();
        Assert.Equal("/v1/topics", silo.Requests[^1].RawTarget);
        Assert.Equal(ImageOffset, topics.MetadataOffset);
        Assert.Equal(ImageOffset, client.SeenMetadataOffset);

        // An offset the caller gave is the caller's: refused as it is, and the client's own is kept.
        var explicitError = await Assert.ThrowsAsync<MetaApiException>(() => client.ListTopicsAsync(minOffset: 500));
        Assert.False(explicitError.IsRetryable);
        Assert.Equal(ImageOffset, client.SeenMetadataOffset);
    }

    [Fact]
    public async Task Watch_events_raise_the_seen_offset()
    {
        await using var silo = await FakeSilo.StartAsync(app =>
        {
            app.MapGet("/v1/watch", async (HttpContext context) =>
            {
                context.Response.ContentType = "text/event-stream";
                await context.Response.WriteAsync(
                    "event: record\ndata: {\"kind\":\"record\",\"offset\":7,\"type\":\"topic\",\"key\":\"orders\"}\n\n" +
                    "event: progress\ndata: {\"kind\":\"progress\",\"offset\":9}\n\n");
                await context.Response.Body.FlushAsync();
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            });
            app.MapGet("/v1/topics", (long? minOffset) => Results.Ok(new TopicsResponse([], minOffset ?? 0)));
        });
        using var client = Samples.Client(silo.Url);
        using var stop = new CancellationTokenSource();

        var offsets = new List<long>();
        await foreach (var change in client.WatchAsync(fromOffset: 1, cancellationToken: stop.Token))
        {
            offsets.Add(change.Offset);
            Assert.Equal(change.Offset, client.SeenMetadataOffset);
            if (offsets.Count == 2)
            {
                break;
            }
        }

        await client.ListTopicsAsync();
        Assert.Equal([7L, 9L], offsets);
        Assert.Equal("/v1/topics?minOffset=9", silo.Requests[^1].RawTarget);
    }

    [Fact]
    public void Concurrent_observations_keep_the_highest_offset()
    {
        var session = new SessionOffset(monotonicReads: true);
        var offsets = Enumerable.Range(1, 20_000).Select(i => (long)i).OrderBy(_ => Random.Shared.Next()).ToArray();

        Parallel.ForEach(offsets, session.Observe);

        Assert.Equal(20_000, session.Seen);
        Assert.Equal(20_000, session.MinOffsetFor(null));
    }

    [Fact]
    public void Every_answer_that_names_a_metadata_offset_is_observed()
    {
        var missing = typeof(IMetadataOffsetAnswer).Assembly.GetExportedTypes()
            .Where(t => t.GetProperty(nameof(IMetadataOffsetAnswer.MetadataOffset), BindingFlags.Public | BindingFlags.Instance)?.PropertyType == typeof(long))
            .Where(t => !typeof(IMetadataOffsetAnswer).IsAssignableFrom(t))
            .Select(t => t.Name)
            .ToList();

        Assert.Empty(missing);
        Assert.True(typeof(IMetadataOffsetAnswer).IsAssignableFrom(typeof(TopicResponse)));
    }

    private string LastTarget => _silo.Requests[^1].RawTarget;

    private static long At(long? minOffset) => Math.Max(ImageOffset, minOffset ?? 0);

    /// <summary>Runs the named read without a minOffset; returns the offset it was answered at.</summary>
    private static async Task<long> ReadAsync(MetaClient client, string read) => read switch
    {
        "ListBrokers" => (await client.ListBrokersAsync()).MetadataOffset,
        "ListTopics" => (await client.ListTopicsAsync()).MetadataOffset,
        "DescribeTopic" => (await client.DescribeTopicAsync("orders")).MetadataOffset,
        "DescribeTopicConfigs" => (await client.DescribeTopicConfigsAsync("orders")).MetadataOffset,
        "GetMetadata" => (await client.GetMetadataAsync(["orders"])).MetadataOffset,
        "GetMetadataDelta" => (await client.GetMetadataDeltaAsync(5)).MetadataOffset,
        _ => throw new ArgumentOutOfRangeException(nameof(read)),
    };
}
