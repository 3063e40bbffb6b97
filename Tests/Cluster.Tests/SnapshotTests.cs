using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Snapshots of the metadata image and retention of the log, with real silos (issue 11).</summary>
public sealed class SnapshotTests
{
    // The writer runs only when a test asks it to (WriteSnapshotAsync, RunRetentionAsync), so each test knows which
    // snapshots exist. One snapshot kept and no retention window: retention deletes everything the snapshot covers.
    private static readonly Dictionary<string, string> Manual = new()
    {
        ["Meta:Snapshots:Enabled"] = "false",
        ["Meta:Snapshots:SnapshotsToKeep"] = "1",
        ["Meta:Snapshots:RetentionWindow"] = "00:00:00",
        ["Meta:Snapshots:RetentionBatchSize"] = "3",
    };

    [Fact]
    public async Task A_silo_started_after_a_snapshot_loads_it_and_holds_the_image_a_full_replay_builds()
    {
        await using var cluster = new TestCluster("snapshot-start", Manual);
        var first = await cluster.StartInProcessSiloAsync();
        using var client = cluster.CreateClient();
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);
        try
        {
            await ChangeAsync(client, "before", 3);
            await using var consumer = new GroupConsumer(client, new GroupConsumerOptions { GroupId = "snapshot-group", Topics = ["before-0"] });
            await consumer.StartAsync(); // the snapshot holds a group with a member and its assignment
            await Eventually.Until(() => Task.FromResult(consumer.Assignment.Count > 0), "the member owns partitions", TimeSpan.FromSeconds(20));
            var snapshot = await WriteSnapshotAsync(first);
            await ChangeAsync(client, "after", 3);

            var second = await cluster.StartInProcessSiloAsync();
            var image = second.Services.GetRequiredService<MetadataImageService>();
            await image.WaitForAsync(await HeadAsync(cluster), TimeSpan.FromSeconds(30));

            Assert.Equal(snapshot, image.SnapshotOffset);
            Assert.True(image.Current.Offset > snapshot);
            Assert.NotEmpty(image.Current.Groups["snapshot-group"].Members.Single().Value.Assignment);
            await AssertEqualsFullReplayAsync(cluster, image.Current);
        }
        finally
        {
            await DisposeAllAsync(brokers);
        }
    }

    [Fact]
    public async Task A_snapshot_whose_bytes_were_damaged_is_skipped_for_the_one_before_it()
    {
        await using var cluster = new TestCluster("snapshot-damaged", new Dictionary<string, string>(Manual) { ["Meta:Snapshots:SnapshotsToKeep"] = "2" });
        var first = await cluster.StartInProcessSiloAsync();
        using var client = cluster.CreateClient();
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);
        try
        {
            await ChangeAsync(client, "one", 2);
            var older = await WriteSnapshotAsync(first);
            await ChangeAsync(client, "two", 2);
            var newer = await WriteSnapshotAsync(first);
            await ChangeAsync(client, "three", 1);
            await ExecuteAsync(
                "UPDATE metadata_snapshot_chunk SET data = overlay(data placing '\\xdeadbeef'::bytea from 200) WHERE cluster_id = $1 AND snapshot_offset = $2",
                cluster.ClusterId, newer);

            var second = await cluster.StartInProcessSiloAsync();
            var image = second.Services.GetRequiredService<MetadataImageService>();
            await image.WaitForAsync(await HeadAsync(cluster), TimeSpan.FromSeconds(30));

            Assert.Equal(older, image.SnapshotOffset);
            await AssertEqualsFullReplayAsync(cluster, image.Current);
        }
        finally
        {
            await DisposeAllAsync(brokers);
        }
    }

    [Fact]
    public async Task A_silo_behind_the_retained_start_of_the_log_loads_the_newest_snapshot_instead_of_replaying()
    {
        await using var cluster = new TestCluster("snapshot-behind", Manual);
        var first = await cluster.StartInProcessSiloAsync();
        await using var lagging = await HookedSilo.StartAsync(cluster, "lagging", Manual);
        await Eventually.Until(
            () => first.Services.GetRequiredService<OrleansMeta.Runtime.Cluster.IClusterMembership>().CurrentView.ActiveSilos.Count == 2,
            "the first silo sees the lagging one active", TimeSpan.FromSeconds(30));
        using var client = cluster.CreateClient();
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);
        try
        {
            var laggingImage = lagging.Services.GetRequiredService<MetadataImageService>();
            await laggingImage.WaitForAsync(await HeadAsync(cluster), TimeSpan.FromSeconds(30));
            lagging.Log.HoldAt(laggingImage.Current.Offset);

            // The cluster moves on, a snapshot covers it, and retention deletes every record the lagging silo lacks.
            // (Only topics whose grains the first silo owns: a grain on the lagging silo would wait for its image.)
            var owned = OwnedBy(first, "meanwhile").Take(4).ToList();
            foreach (var name in owned.Take(3))
            {
                await client.CreateTopicAsync(new CreateTopicRequest(name, 3));
            }

            var snapshot = await WriteSnapshotAsync(first);
            var writer = first.Services.GetRequiredService<MetadataSnapshotWriter>();
            Assert.True(await writer.RunRetentionAsync() >= snapshot - laggingImage.Current.Offset);
            var after = (await client.CreateTopicAsync(new CreateTopicRequest(owned[3], 2))).MetadataOffset;

            lagging.Log.Release();
            await laggingImage.WaitForAsync(after, TimeSpan.FromSeconds(30));

            Assert.Equal(snapshot, laggingImage.SnapshotOffset);
            var reference = await first.Services.GetRequiredService<MetadataImageService>().WaitForAsync(after, TimeSpan.FromSeconds(30));
            Assert.Equal(Canonical(reference), Canonical(laggingImage.Current));

            // A silo that starts now, on a log whose start is gone, starts from the snapshot too.
            var fresh = await cluster.StartInProcessSiloAsync();
            var freshImage = fresh.Services.GetRequiredService<MetadataImageService>();
            await freshImage.WaitForAsync(after, TimeSpan.FromSeconds(30));
            Assert.Equal(snapshot, freshImage.SnapshotOffset);
            Assert.Equal(Canonical(reference), Canonical(await freshImage.WaitForAsync(reference.Offset, TimeSpan.FromSeconds(30))));
        }
        finally
        {
            await DisposeAllAsync(brokers);
        }
    }

    /// <summary>Topic creations, growth, config changes and a deletion: every kind of topic and partition record.</summary>
    private static async Task ChangeAsync(MetaClient client, string prefix, int topics)
    {
        for (var i = 0; i < topics; i++)
        {
            await client.CreateTopicAsync(new CreateTopicRequest($"{prefix}-{i}", 3));
        }

        await client.AddPartitionsAsync($"{prefix}-0", new AddPartitionsRequest(5));
        await client.CreateTopicAsync(new CreateTopicRequest($"{prefix}-gone", 1));
        await client.DeleteTopicAsync($"{prefix}-gone");
    }

    private static IEnumerable<string> OwnedBy(InProcessSilo silo, string prefix)
    {
        var locator = silo.Services.GetRequiredService<OrleansMeta.Runtime.Placement.GrainLocator>();
        return Enumerable.Range(0, 1000).Select(i => $"{prefix}-{i}").Where(name => locator.Locate<OrleansMeta.GrainInterfaces.ITopicGrain>(name).IsLocal);
    }

    private static async Task<long> WriteSnapshotAsync(InProcessSilo silo)
    {
        var image = silo.Services.GetRequiredService<MetadataImageService>();
        await image.WaitForAsync(await HeadAsync(silo.Services), TimeSpan.FromSeconds(30));
        var offset = await silo.Services.GetRequiredService<MetadataSnapshotWriter>().WriteSnapshotAsync();
        Assert.NotNull(offset);
        return offset.Value;
    }

    private static Task<long> HeadAsync(IServiceProvider services) => services.GetRequiredService<IMetadataLog>().GetHeadAsync(CancellationToken.None);

    private static async Task<long> HeadAsync(TestCluster cluster)
    {
        await using var dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        await using var log = new PostgresMetadataLog(dataSource, Microsoft.Extensions.Options.Options.Create(new PostgresStorageOptions { ClusterId = cluster.ClusterId }));
        return await log.GetHeadAsync(CancellationToken.None);
    }

    /// <summary>Builds the image by applying the whole log from offset 1 up to <paramref name="image"/>'s offset, and
    /// compares.</summary>
    private static async Task AssertEqualsFullReplayAsync(TestCluster cluster, MetadataImage image)
    {
        await using var dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        await using var log = new PostgresMetadataLog(dataSource, Microsoft.Extensions.Options.Options.Create(new PostgresStorageOptions { ClusterId = cluster.ClusterId }));
        var records = (await log.ReadAsync(0, 1_000_000, CancellationToken.None)).Where(r => r.Offset <= image.Offset).ToList();
        Assert.Equal(1, records[0].Offset);
        Assert.Equal(Canonical(MetadataImage.Empty.Apply(records)), Canonical(image));
    }

    /// <summary>Everything an image holds, in a fixed order, as JSON: equal strings, equal images.</summary>
    internal static string Canonical(MetadataImage image) => JsonSerializer.Serialize(new
    {
        image.Offset,
        image.Controller,
        Brokers = image.Brokers.Values.OrderBy(b => b.Record.BrokerId).Select(b => new { b.Record, b.RegistrationOffset }),
        Topics = image.Topics.Values.OrderBy(t => t.Topic.Name, StringComparer.Ordinal).Select(t => new { t.Topic, Partitions = t.Partitions.ToArray() }),
        Names = image.TopicNames.OrderBy(n => n.Key).Select(n => $"{n.Key}={n.Value}"),
        Groups = image.Groups.Values.OrderBy(g => g.Group.GroupId, StringComparer.Ordinal)
            .Select(g => new { g.Group, Members = g.Members.Values.OrderBy(m => m.MemberId, StringComparer.Ordinal) }),
    });

    private static async Task ExecuteAsync(string sql, string clusterId, long offset)
    {
        await using var connection = new NpgsqlConnection(TestPostgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = offset });
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }

    private static async Task DisposeAllAsync(IEnumerable<TestBroker> brokers)
    {
        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }
}
