using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Grains.Metadata;

namespace OrleansMeta.Cluster.Tests;

/// <summary><c>GET /v1/watch</c> over HTTP on a real silo: parameters, resuming, and the SDK's metadata cache.</summary>
public sealed class WatchApiTests
{
    [Fact]
    public async Task A_bad_parameter_is_refused_with_a_problem_naming_it()
    {
        await using var cluster = new TestCluster("watch-bad");
        var silo = await cluster.StartInProcessSiloAsync();
        await cluster.WaitForAgreementAsync();

        foreach (var (query, code, field) in new[]
        {
            ("fromOffset=0", "INVALID_REQUEST", "fromOffset"),
            ("fromOffset=abc", "INVALID_REQUEST", "fromOffset"),
            ("fromOffset=999999", "OFFSET_OUT_OF_RANGE", "fromOffset"),
            ("kinds=groups", "INVALID_REQUEST", "kinds"),
            ("brokers=-1", "INVALID_REQUEST", "brokers"),
            ("topics=a,,b", "INVALID_REQUEST", "topics"),
            ("topics=bad%20name", "INVALID_TOPIC_EXCEPTION", "topics"),
            ("topicPrefix=a%2Fb", "INVALID_TOPIC_EXCEPTION", "topicPrefix"),
            ("groups=bad%20group", "INVALID_GROUP_ID", "groups"),
            ("groups=g1,,g2", "INVALID_REQUEST", "groups"),
        })
        {
            using var response = await silo.Http.GetAsync("/v1/watch?" + query);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query}: {response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal((query, code), (query, problem.GetProperty("code").GetString()));
            Assert.Contains(field, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Last_event_id_resumes_after_that_offset_and_wins_over_from_offset_and_a_bad_one_is_refused()
    {
        await using var setup = await MetaSetup.StartAsync("watch-resume", silos: 1);
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("resumed", 1, 1));
        var head = created.MetadataOffset;

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/watch?fromOffset=1");
        request.Headers.Add("Last-Event-ID", (head - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await setup.Silos[0].Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal($"id: {head}", await reader.ReadLineAsync());
        Assert.Equal("event: topic", await reader.ReadLineAsync());
        var data = JsonDocument.Parse((await reader.ReadLineAsync())!["data: ".Length..]).RootElement;
        Assert.Equal(("record", head, "resumed"), (data.GetProperty("kind").GetString(), data.GetProperty("offset").GetInt64(), data.GetProperty("key").GetString()));

        using var bad = new HttpRequestMessage(HttpMethod.Get, "/v1/watch");
        bad.Headers.Add("Last-Event-ID", "-3");
        using var refused = await setup.Silos[0].Http.SendAsync(bad);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("Last-Event-ID", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sdk_watch_starts_with_a_snapshot_and_the_metadata_cache_answers_leader_lookups_without_a_request()
    {
        await using var setup = await MetaSetup.StartAsync("watch-cache", silos: 1);
        var cached = await setup.Client.CreateTopicAsync(new CreateTopicRequest("cached", 3, 2));

        // A watch without an offset: a marked snapshot of the current state, then the records after it. The snapshot is
        // the silo's image: once that holds the topic, the snapshot does (before, the topic would come as a record).
        await setup.Silos[0].Services.GetRequiredService<MetadataImageService>().WaitForAsync(cached.MetadataOffset, TimeSpan.FromSeconds(30));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = new List<WatchEvent>();
        await foreach (var item in setup.Client.WatchAsync(new WatchFilter { Topics = ["cached"] }, cancellationToken: stop.Token))
        {
            events.Add(item);
            if (item.Kind == WatchEventKinds.SnapshotEnd)
            {
                break;
            }
        }

        Assert.Equal(WatchEventKinds.SnapshotStart, events[0].Kind);
        var topic = events.Single(e => e.Kind == WatchEventKinds.Snapshot && e.Type == "topic");
        Assert.Equal(3, topic.Record!.Value.GetProperty("initialPartitions").GetArrayLength());

        // The cache, fed by the watch, answers the client's leader lookups from memory: a client whose only silo is
        // gone still answers them.
        using var client = setup.Cluster.CreateClient();
        await using var cache = new MetadataCache(client);
        await cache.StartAsync(stop.Token);
        Assert.True(cache.TryGetLeader("cached", 2, out var leader));
        var change = await setup.Client.AlterTopicConfigsAsync("cached", new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = "1000" }));
        await cache.WaitForOffsetAsync(change.MetadataOffset, stop.Token);
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("later", 2, 1));
        await cache.WaitForOffsetAsync(created.MetadataOffset, stop.Token);
        Assert.Equal(["cached", "later"], cache.TopicNames);

        await setup.Silos[0].StopAsync();
        Assert.Equal(leader, await client.GetLeaderAsync("cached", 2, stop.Token));
        Assert.Equal(created.Topic.Partitions[1].Leader, (await client.GetLeaderAsync("later", 1, stop.Token)).BrokerId);
    }
}
