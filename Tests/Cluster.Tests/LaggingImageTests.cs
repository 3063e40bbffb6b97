using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Cluster.Tests;

/// <summary>Decisions taken by a silo whose metadata image lags the log (issue 7: 1 and 7), with a slow tailer.</summary>
public sealed class LaggingImageTests
{
    private static readonly Dictionary<string, string> ShortImageWait = new() { ["Meta:Controller:ImageWaitTimeout"] = "00:00:02" };

    [Fact]
    public async Task A_controller_on_a_silo_whose_image_lags_decides_nothing_until_its_image_reaches_the_head_it_read_at_takeover()
    {
        await using var cluster = new TestCluster("lagging-controller");
        await using var first = await HookedSilo.StartAsync(cluster, "silo-0", ShortImageWait);
        await using var second = await HookedSilo.StartAsync(cluster, "silo-1", ShortImageWait);
        HookedSilo[] silos = [first, second];
        await WaitForViewAsync(silos);
        using var client = Client(silos);
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);
        // Single-replica topics on broker 3. Each partition grain lives on one silo or the other (hash placement); those
        // on the controller's silo are the ones the scenario needs, and with several some surely land there.
        var solos = Enumerable.Range(0, 8).Select(i => $"solo-{i}").ToList();
        foreach (var solo in solos)
        {
            await client.CreateTopicAsync(new CreateTopicRequest(solo, Assignment: [[3]]));
        }

        await client.CreateTopicAsync(new CreateTopicRequest("marker", Assignment: [[1, 2]]));

        var controller = (await client.GetClusterAsync()).Controller!;
        var host = silos.Single(s => controller.Silo!.StartsWith(s.SiloEndpoint, StringComparison.Ordinal));
        var lagging = silos.Single(s => s != host);
        using var hostClient = Client([host]);

        // The other silo's image stops right after broker 3 was fenced: it still shows broker 3, fenced, leading them.
        lagging.Log.HoldAfter(r => r.Type == RecordTypes.Broker && r.Key == "3" && State(r) == BrokerStates.Fenced);
        await brokers[2].StopHeartbeatsAsync();
        foreach (var solo in solos)
        {
            await MetadataTests.WaitForAsync(hostClient, solo, t => t.Partitions[0].Leader == -1, $"{solo} is offline while broker 3 is fenced");
        }

        // Broker 3 returns as a new incarnation and leads them again (those whose grain the lagging silo hosts cannot
        // change until its image catches up); the lagging image sees none of it.
        await using var returned = new TestBroker(client, 3);
        await returned.StartAsync();
        await returned.WaitUnfencedAsync();
        var releds = new List<TopicDescription>();
        await Eventually.Until(async () =>
        {
            var topics = await Task.WhenAll(solos.Select(async solo => (await hostClient.DescribeTopicAsync(solo)).Topic));
            releds = [.. topics.Where(t => t.Partitions[0].Leader == 3)];
            return releds.Count > 0;
        }, "broker 3 leads some of them again", TimeSpan.FromSeconds(30));
        Assert.NotNull(lagging.Log.HeldAt);

        // The controller's silo leaves; the lagging silo takes over the controller. On its image broker 3 is fenced, so a
        // decision taken on it would take those partitions offline although their leader is alive.
        await host.StopAsync();
        await using var dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        var log = new PostgresMetadataLog(dataSource, Microsoft.Extensions.Options.Options.Create(new PostgresStorageOptions { ClusterId = cluster.ClusterId }));
        long newEpoch = 0;
        await Eventually.Until(async () =>
        {
            var takeover = (await log.ReadAsync(0, 100_000, CancellationToken.None)).LastOrDefault(r => r.Type == RecordTypes.Controller);
            newEpoch = takeover is null ? 0 : JsonDocument.Parse(takeover.Payload).RootElement.GetProperty("epoch").GetInt64();
            return newEpoch > controller.Epoch;
        }, "the lagging silo took over the controller", TimeSpan.FromSeconds(60));

        // Its image catches up; then a change it must act on proves that its earlier rounds have run.
        lagging.Log.Release();
        using var laggingClient = Client([lagging]);
        await brokers[1].StopHeartbeatsAsync();
        await MetadataTests.WaitForAsync(laggingClient, "marker", t => !t.Partitions[0].Isr.Contains(2), "the new controller removed broker 2 from marker's ISR");

        var releadIds = releds.Select(t => t.TopicId).ToHashSet();
        var decisions = (await log.ReadAsync(0, 100_000, CancellationToken.None))
            .Where(r => r.Type == RecordTypes.Partition)
            .Select(r => JsonSerializer.Deserialize<PartitionRecord>(r.Payload, JsonSerializerOptions.Web)!)
            .Where(p => releadIds.Contains(p.TopicId) && p.ControllerEpoch == newEpoch)
            .Select(p => $"{p.Topic}: {p.Change}, leader {p.State.Leader}")
            .ToList();
        Assert.Empty(decisions);
        foreach (var relead in releds)
        {
            Assert.Equal(3, (await laggingClient.DescribeTopicAsync(relead.Name)).Topic.Partitions[0].Leader);
        }

        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }

    [Fact]
    public async Task AlterPartition_from_a_replaced_incarnation_is_refused_even_by_a_silo_whose_image_has_not_seen_the_replacement()
    {
        await using var cluster = new TestCluster("zombie-alter");
        await using var silo = await HookedSilo.StartAsync(cluster, "silo-0", ShortImageWait);
        await BrokerSafetyTests.WaitReadyAsync(silo);
        using var client = Client([silo]);
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);
        var created = await client.CreateTopicAsync(new CreateTopicRequest("orders", 1, 3));
        var partition = created.Topic.Partitions[0];
        var zombie = brokers.Single(b => b.Id == partition.Leader);

        // From here on this silo's image stands still: the leader's death and replacement happen only in the database.
        var image = silo.Services.GetRequiredService<MetadataImageService>();
        var head = await silo.Services.GetRequiredService<IMetadataLog>().GetHeadAsync(CancellationToken.None);
        await image.WaitForAsync(head, TimeSpan.FromSeconds(10));
        silo.Log.HoldAt(head);
        await zombie.StopHeartbeatsAsync();
        var brokerGrain = silo.Grains.GetGrain<IBrokerGrain>(zombie.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Eventually.Until(async () =>
        {
            try
            {
                await brokerGrain.RegisterAsync(new RegisterBroker(Guid.NewGuid(), [new ListenerRecord("PLAINTEXT", "replacement", 9092, "PLAINTEXT")], null));
                return true;
            }
            catch (MetaException refused) when (refused.Code == ErrorCodes.DuplicateBrokerRegistration)
            {
                return false;
            }
        }, "a new incarnation replaced the old leader", TimeSpan.FromSeconds(30));
        Assert.Equal(head, image.Current.Offset);

        // The old incarnation, not knowing it was replaced, shrinks the ISR to itself.
        var grain = silo.Grains.GetGrain<IPartitionGrain>(PartitionKeys.For(created.Topic.TopicId, 0));
        var shrink = new AlterPartition(zombie.Id, zombie.Epoch, partition.LeaderEpoch, partition.PartitionEpoch, [zombie.Id], head);
        var refused = await Assert.ThrowsAsync<MetaException>(() => grain.AlterPartitionAsync(shrink));
        Assert.Contains(refused.Code, new[] { ErrorCodes.StaleBrokerEpoch, ErrorCodes.OffsetNotAvailable });

        // Once the image has caught up the answer is the plain one.
        silo.Log.Release();
        var stale = await Assert.ThrowsAsync<MetaException>(() => grain.AlterPartitionAsync(shrink));
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.Code);

        await using var dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        var log = new PostgresMetadataLog(dataSource, Microsoft.Extensions.Options.Options.Create(new PostgresStorageOptions { ClusterId = cluster.ClusterId }));
        var isrChanges = (await log.ReadAsync(0, 100_000, CancellationToken.None))
            .Where(r => r.Type == RecordTypes.Partition && JsonDocument.Parse(r.Payload).RootElement.GetProperty("change").GetString() == "isr-changed");
        Assert.Empty(isrChanges);

        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }

    private static string? State(LoggedRecord record)
        => JsonDocument.Parse(record.Payload).RootElement.TryGetProperty("state", out var state) ? state.GetString() : null;

    private static MetaClient Client(IEnumerable<SiloHandle> silos) => new(new MetaClientOptions
    {
        BootstrapUrls = [.. silos.Select(s => s.Http.BaseAddress!)],
        RequestTimeout = TimeSpan.FromSeconds(20),
        MaxAttempts = 10,
    });

    private static Task WaitForViewAsync(IReadOnlyList<SiloHandle> silos) => Eventually.Until(async () =>
    {
        var views = await Task.WhenAll(silos.Select(s => s.GetClusterAsync()));
        return views.All(v => v.Silos.Count(s => s.Status == "active") == silos.Count);
    }, "the silos see each other active", TimeSpan.FromSeconds(60));
}
