using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>The snapshot store and log retention (007_metadata_snapshots.sql) against a real PostgreSQL.</summary>
public sealed class MetadataSnapshotStoreTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    private static PostgresMetadataSnapshots Snapshots(OwnedStorage owned)
        => new(owned.DataSource, Options.Create(new PostgresStorageOptions { ClusterId = owned.ClusterId }));

    /// <summary>Appends <paramref name="count"/> records (offsets continue from the head) in one write.</summary>
    private static async Task AppendAsync(OwnedStorage owned, string grain, long version, int count)
    {
        var records = Enumerable.Range(0, count).Select(i => new LogRecord("topic", $"t{i}", Json.Bytes($"{i}"))).ToList();
        await owned.Storage.WriteAsync(new GrainId("topic", grain), "state", new StateWrite(Json.Bytes("1"), version, records, []), CancellationToken.None);
    }

    [Fact]
    public async Task A_snapshot_larger_than_a_chunk_is_read_back_whole_and_a_second_write_at_its_offset_changes_nothing()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var store = Snapshots(owned);
        var data = new byte[(2 * PostgresMetadataSnapshots.ChunkSize) + 12345];
        Random.Shared.NextBytes(data);

        Assert.True(await store.WriteAsync(10, 1, data, CancellationToken.None));
        Assert.False(await store.WriteAsync(10, 1, new byte[] { 1, 2, 3 }, CancellationToken.None));

        Assert.Equal(data, await store.ReadAsync(10, CancellationToken.None));
        var listed = Assert.Single(await store.ListAsync(CancellationToken.None));
        Assert.Equal((10L, 1, (long)data.Length), (listed.Offset, listed.FormatVersion, listed.Length));
        Assert.Null(await store.ReadAsync(11, CancellationToken.None));
    }

    [Fact]
    public async Task Only_the_newest_snapshots_are_kept_and_they_are_listed_newest_first()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var store = Snapshots(owned);
        foreach (var offset in new long[] { 10, 30, 20 })
        {
            await store.WriteAsync(offset, 1, new byte[] { (byte)offset }, CancellationToken.None);
        }

        Assert.Equal([30L, 20, 10], (await store.ListAsync(CancellationToken.None)).Select(s => s.Offset));
        Assert.Equal(1, await store.DeleteOldSnapshotsAsync(2, CancellationToken.None));
        Assert.Equal([30L, 20], (await store.ListAsync(CancellationToken.None)).Select(s => s.Offset));
        Assert.Null(await store.ReadAsync(10, CancellationToken.None));
    }

    [Fact]
    public async Task A_snapshot_whose_bytes_changed_or_lost_a_chunk_is_refused()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var store = Snapshots(owned);
        var data = new byte[PostgresMetadataSnapshots.ChunkSize + 100];
        Random.Shared.NextBytes(data);
        await store.WriteAsync(5, 1, data, CancellationToken.None);
        await store.WriteAsync(6, 1, data, CancellationToken.None);

        await ExecuteAsync(owned, "UPDATE metadata_snapshot_chunk SET data = overlay(data placing '\\x00ff'::bytea from 10) WHERE cluster_id = $1 AND snapshot_offset = 5");
        await ExecuteAsync(owned, "DELETE FROM metadata_snapshot_chunk WHERE cluster_id = $1 AND snapshot_offset = 6 AND chunk_index = 1");

        await Assert.ThrowsAsync<InvalidDataException>(() => store.ReadAsync(5, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidDataException>(() => store.ReadAsync(6, CancellationToken.None));
    }

    [Fact]
    public async Task Retention_deletes_a_prefix_up_to_the_oldest_snapshot_in_bounded_batches_and_stops_at_the_first_young_record()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        await using var log = owned.CreateLog();
        var store = Snapshots(owned);
        await AppendAsync(owned, "a", 0, 30);

        // No snapshot: nothing may go, however old.
        await ExecuteAsync(owned, "UPDATE metadata_log SET written_at = now() - interval '2 hours' WHERE cluster_id = $1");
        Assert.Equal(0, await store.DeleteLogPrefixAsync(TimeSpan.Zero, 4, CancellationToken.None));

        await store.WriteAsync(25, 1, new byte[] { 1 }, CancellationToken.None);
        await store.WriteAsync(28, 1, new byte[] { 2 }, CancellationToken.None);
        await ExecuteAsync(owned, "UPDATE metadata_log SET written_at = now() WHERE cluster_id = $1 AND log_offset = 12");

        // One statement deletes at most its batch, from the start.
        Assert.Equal(4, await ExecuteAsync(owned, PostgresMetadataSnapshots.DeletePrefixSql, TimeSpan.FromHours(1), 4L));
        Assert.Equal(5L, (await log.ReadAsync(0, 1, CancellationToken.None))[0].Offset);

        // Record 12 is younger than the window: it and everything after it stay, though older ones follow it.
        Assert.Equal(7, await store.DeleteLogPrefixAsync(TimeSpan.FromHours(1), 4, CancellationToken.None));
        Assert.Equal(12L, (await log.ReadAsync(0, 1, CancellationToken.None))[0].Offset);

        // Once it is old too, retention goes up to the oldest kept snapshot (25), not the newest.
        await ExecuteAsync(owned, "UPDATE metadata_log SET written_at = now() - interval '2 hours' WHERE cluster_id = $1 AND log_offset = 12");
        Assert.Equal(14, await store.DeleteLogPrefixAsync(TimeSpan.FromHours(1), 4, CancellationToken.None));
        Assert.Equal(0, await store.DeleteLogPrefixAsync(TimeSpan.FromHours(1), 4, CancellationToken.None));

        // Readers asking from before the retained start get records from it on; the head is untouched.
        Assert.Equal([26L, 27, 28, 29, 30], (await log.ReadAsync(0, 100, CancellationToken.None)).Select(r => r.Offset));
        Assert.Equal([26L, 27], (await log.ReadAsync(7, 2, CancellationToken.None)).Select(r => r.Offset));
        Assert.Equal(30, await log.GetHeadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Appends_commit_while_a_retention_batch_holds_its_rows()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        await using var log = owned.CreateLog();
        var store = Snapshots(owned);
        await AppendAsync(owned, "a", 0, 20);
        await store.WriteAsync(15, 1, new byte[] { 1 }, CancellationToken.None);

        // A retention batch that has deleted its rows and not committed yet (a slow one, frozen mid-flight).
        await using var connection = await owned.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var delete = new NpgsqlCommand(PostgresMetadataSnapshots.DeletePrefixSql, connection, transaction))
        {
            delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
            delete.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = TimeSpan.Zero });
            delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = 100 });
            Assert.Equal(15, await delete.ExecuteNonQueryAsync());
        }

        // Appends (which take the log's head row) and readers go on meanwhile.
        for (var version = 1; version <= 5; version++)
        {
            await AppendAsync(owned, "a", version, 3).WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(35, await log.GetHeadAsync(CancellationToken.None));
        Assert.Equal(1L, (await log.ReadAsync(0, 1, CancellationToken.None))[0].Offset);

        await transaction.CommitAsync();
        Assert.Equal(16L, (await log.ReadAsync(0, 1, CancellationToken.None))[0].Offset);
        Assert.Equal(20, (await log.ReadAsync(0, 100, CancellationToken.None)).Count);
    }

    private static async Task<int> ExecuteAsync(OwnedStorage owned, string sql, params object[] parameters)
    {
        await using var command = owned.DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owned.ClusterId });
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return await command.ExecuteNonQueryAsync();
    }
}
