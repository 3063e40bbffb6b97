using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Cluster.Tests;

public sealed class ControllerTests
{
    [Fact]
    public async Task Killing_the_silo_that_hosts_the_controller_yields_a_new_controller_with_a_higher_epoch_that_finishes_the_work()
    {
        await using var setup = await MetaSetup.StartAsync("controller-failover");
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("clicks", 12, 3));
        var before = await setup.Client.GetClusterAsync();
        Assert.NotNull(before.Controller);
        var host = setup.Silos.Single(s => before.Controller!.Silo!.StartsWith(s.SiloEndpoint, StringComparison.Ordinal));

        // The controller's silo crashes while a broker dies: the work of re-electing its partitions falls to the next controller.
        var victim = setup.Brokers[1];
        await host.KillAsync();
        await victim.StopHeartbeatsAsync();

        using var client = setup.Cluster.CreateClient();
        var after = await MetadataTests.WaitForAsync(client, "clicks", t => t.Partitions.All(p => p.Leader != victim.Id && !p.Isr.Contains(victim.Id)),
            "the new controller moved leadership off the dead broker");
        Assert.All(after.Partitions, p => Assert.NotEqual(-1, p.Leader));
        var now = await client.GetClusterAsync();
        Assert.True(now.Controller!.Epoch > before.Controller!.Epoch, $"epoch {now.Controller.Epoch} should exceed {before.Controller.Epoch}");
        Assert.False(now.Controller.Silo!.StartsWith(host.SiloEndpoint, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Elections_for_many_partitions_share_database_transactions()
    {
        await using var setup = await MetaSetup.StartAsync("batched-elections");
        await setup.Client.CreateTopicAsync(new CreateTopicRequest("wide", 600, 3));
        var storages = setup.Silos.Select(s => s.Services.GetRequiredService<PostgresGrainStorage>()).ToList();
        long Writes() => storages.Sum(s => s.Statistics.Writes);
        long Transactions() => storages.Sum(s => s.Statistics.Transactions);
        var (writesBefore, transactionsBefore) = (Writes(), Transactions());

        // Broker 1 dies: 200 partitions need a new leader, 400 more lose it from their ISR.
        await setup.Brokers[0].StopHeartbeatsAsync();
        await MetadataTests.WaitForAsync(setup.Client, "wide", t => t.Partitions.All(p => !p.Isr.Contains(1) && p.Leader != 1), "broker 1 is gone from every partition");

        var writes = Writes() - writesBefore;
        var transactions = Transactions() - transactionsBefore;
        Assert.True(writes >= 600, $"expected at least 600 partition writes, saw {writes}");
        Assert.True(transactions * 5 < writes, $"{writes} writes took {transactions} transactions; elections should be batched");
    }

    [Fact]
    public async Task A_decision_carrying_a_stale_controller_epoch_is_rejected_and_changes_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("stale-controller");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("ledger", 1, 3));
        var cluster = await setup.Client.GetClusterAsync();
        var epoch = cluster.Controller!.Epoch;
        var partition = created.Topic.Partitions[0];
        var grains = setup.Silos[0].Services.GetRequiredService<IGrainFactory>();
        var grain = grains.GetGrain<IPartitionGrain>(PartitionKeys.For(created.Topic.TopicId, 0));
        var live = setup.Brokers.Select(b => b.Id).ToArray();

        // A controller that lost its place (epoch - 1) tries to move leadership: fenced by the epoch row.
        var stale = await Assert.ThrowsAsync<MetaException>(() => grain.ApplyAsync(new PartitionCommand(
            PartitionCommandKind.MoveLeadershipAway, epoch - 1, live, [], false, partition.Leader, created.MetadataOffset)));
        Assert.Equal(ErrorCodes.NotController, stale.Code);

        var unchanged = (await setup.Client.DescribeTopicAsync("ledger", created.MetadataOffset)).Topic.Partitions[0];
        Assert.Equal((partition.Leader, partition.LeaderEpoch, partition.PartitionEpoch), (unchanged.Leader, unchanged.LeaderEpoch, unchanged.PartitionEpoch));
        Assert.Equal(partition.Isr, unchanged.Isr);

        // The current epoch is accepted.
        var moved = await grain.ApplyAsync(new PartitionCommand(PartitionCommandKind.MoveLeadershipAway, epoch, live, [], false, partition.Leader, created.MetadataOffset));
        Assert.NotEqual(partition.Leader, moved.State.Leader);
    }

    [Fact]
    public async Task Every_change_appears_in_the_metadata_log_in_order()
    {
        await using var setup = await MetaSetup.StartAsync("log-order");
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("trail", 3, 3, new Dictionary<string, string> { ["retention.ms"] = "60000" }));
        var altered = await setup.Client.AlterTopicConfigsAsync("trail", new AlterConfigsRequest(new Dictionary<string, string?> { ["cleanup.policy"] = "compact" }));
        await setup.Brokers[2].StopHeartbeatsAsync();
        await MetadataTests.WaitForAsync(setup.Client, "trail", t => t.Partitions.All(p => !p.Isr.Contains(setup.Brokers[2].Id)), "broker 3 is out of every ISR");
        var deleted = await setup.Client.DeleteTopicAsync("trail");

        await using var dataSource = NpgsqlDataSource.Create(TestPostgres.ConnectionString);
        var log = new PostgresMetadataLog(dataSource, Microsoft.Extensions.Options.Options.Create(new PostgresStorageOptions { ClusterId = setup.Cluster.ClusterId }));
        var records = await log.ReadAsync(0, 10_000, CancellationToken.None);

        Assert.Equal(Enumerable.Range(1, records.Count).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(deleted.MetadataOffset, records[^1].Offset);
        var kinds = records.Select(r => System.Text.Json.JsonDocument.Parse(r.Payload).RootElement.TryGetProperty("change", out var change)
            ? $"{r.Type}:{change.GetString()}"
            : r.Type).ToList();

        // Registrations and unfencing come first, then the topic's life in the order it happened.
        Assert.Equal(3, kinds.Count(k => k == "broker:registered"));
        var created1 = kinds.IndexOf("topic:created");
        var altered1 = kinds.IndexOf("topic:configs-altered");
        var fenced = kinds.IndexOf("broker:session-expired");
        var deleted1 = kinds.IndexOf("topic:deleted");
        Assert.True(created1 >= 0 && created1 < altered1 && altered1 < fenced && fenced < deleted1, string.Join(", ", kinds));
        Assert.Equal(created.MetadataOffset, records[created1].Offset);
        Assert.Equal(altered.MetadataOffset, records[altered1].Offset);
        Assert.Contains(kinds.Skip(fenced), k => k.StartsWith("partition:", StringComparison.Ordinal));
    }
}
