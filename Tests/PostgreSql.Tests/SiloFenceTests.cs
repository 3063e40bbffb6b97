using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>
/// Every grain state write is fenced by the writing silo's membership row: once peers have declared a silo Dead, none
/// of its writes commits, even if the silo has not noticed yet (a paused process that resumes, a silo cut off from
/// its peers). These tests drive the membership row by hand, as peers would.
/// </summary>
public sealed class SiloFenceTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    [Fact]
    public async Task Writes_of_a_silo_declared_dead_commit_nothing_and_append_no_record()
    {
        var clusterId = "cluster-" + Guid.NewGuid().ToString("N");
        var silo = new SiloAddress("http://127.0.0.1:1", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");
        await using var owned = new OwnedStorage(fixture.Database, clusterId, writer: new FixedWriter(silo));
        var grain = new GrainId("broker", "1");
        Assert.Equal(1, await owned.Storage.WriteAsync(grain, State, Json.Bytes("""{"state":"unfenced"}"""), 0, CancellationToken.None));

        await MembershipRows.SetStatusAsync(fixture.Database, clusterId, silo, "Dead");

        await Assert.ThrowsAsync<SiloFencedException>(() =>
            owned.Storage.WriteAsync(grain, State, Json.Bytes("""{"state":"fenced"}"""), 1, CancellationToken.None));
        var logged = new StateWrite(Json.Bytes("""{"state":"fenced"}"""), 1, [new LogRecord("broker", "1", Json.Bytes("{}"))], []);
        await Assert.ThrowsAsync<SiloFencedException>(() => owned.Storage.WriteAsync(grain, State, logged, CancellationToken.None));
        await Assert.ThrowsAsync<SiloFencedException>(() =>
            owned.Storage.WriteAsync(new GrainId("broker", "2"), State, Json.Bytes("{}"), 0, CancellationToken.None));

        var row = await owned.Storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"state":"unfenced"}""", 1L), (Json.Text(row!.Payload), row.Version));
        Assert.Null(await owned.Storage.ReadAsync(new GrainId("broker", "2"), State, CancellationToken.None));
        await using var log = owned.CreateLog();
        Assert.Equal(0, await log.GetHeadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_write_racing_the_declaration_of_death_waits_for_it_and_then_commits_nothing()
    {
        var clusterId = "cluster-" + Guid.NewGuid().ToString("N");
        var silo = new SiloAddress("http://127.0.0.1:2", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");
        await using var owned = new OwnedStorage(fixture.Database, clusterId, writer: new FixedWriter(silo));
        var grain = new GrainId("partition", "p-0");

        // A peer declaring the silo dead locks its row first, as MembershipTable does, then changes it.
        await using var peer = new NpgsqlConnection(fixture.Database.ConnectionString);
        await peer.OpenAsync();
        await using var transaction = await peer.BeginTransactionAsync();
        await MembershipRows.ExecuteAsync(peer, transaction, "SELECT 1 FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 FOR UPDATE", clusterId, silo);

        var write = owned.Storage.WriteAsync(grain, State, Json.Bytes("""{"leader":1}"""), 0, CancellationToken.None);
        await MembershipRows.WaitUntilABackendWaitsOnALockAsync(fixture.Database, "the write waits on the membership row lock");
        Assert.False(write.IsCompleted);

        await MembershipRows.ExecuteAsync(peer, transaction, "UPDATE membership SET status = 'Dead' WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3", clusterId, silo);
        await transaction.CommitAsync();

        await Assert.ThrowsAsync<SiloFencedException>(() => write);
        Assert.Null(await owned.Storage.ReadAsync(grain, State, CancellationToken.None));
    }

    [Fact]
    public async Task Heartbeats_never_wait_for_a_write_in_flight()
    {
        var clusterId = "cluster-" + Guid.NewGuid().ToString("N");
        var silo = new SiloAddress("http://127.0.0.1:3", 1);
        await MembershipRows.InsertAsync(fixture.Database, clusterId, silo, "Active");

        // A write batch in flight holds its silo's row as the storage statement does.
        await using var writer = new NpgsqlConnection(fixture.Database.ConnectionString);
        await writer.OpenAsync();
        await using var transaction = await writer.BeginTransactionAsync();
        await MembershipRows.ExecuteAsync(writer, transaction, "SELECT 1 FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 FOR KEY SHARE", clusterId, silo);

        // The heartbeat's UPDATE (non-key columns) must not queue behind it.
        await using var heartbeat = new NpgsqlConnection(fixture.Database.ConnectionString);
        await heartbeat.OpenAsync();
        await using (var timeout = new NpgsqlCommand("SET lock_timeout = '2s'", heartbeat))
        {
            await timeout.ExecuteNonQueryAsync();
        }

        await MembershipRows.ExecuteAsync(heartbeat, null, "UPDATE membership SET heartbeat_at = now() WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3 AND status <> 'Dead'", clusterId, silo);
        await transaction.RollbackAsync();
    }

    [Fact]
    public async Task Storage_outside_a_cluster_is_not_fenced()
    {
        await using var owned = new OwnedStorage(fixture.Database, "cluster-" + Guid.NewGuid().ToString("N"), writer: new FixedWriter(null));

        Assert.Equal(1, await owned.Storage.WriteAsync(new GrainId("topic", "t"), State, Json.Bytes("{}"), 0, CancellationToken.None));
    }
}
