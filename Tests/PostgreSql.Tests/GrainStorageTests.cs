using OrleansMeta.Runtime;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class GrainStorageTests(MigratedDatabaseFixture fixture) : IClassFixture<MigratedDatabaseFixture>
{
    private const string State = "state";

    private static string NewClusterId() => "cluster-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Read_of_a_grain_never_written_returns_null()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());

        Assert.Null(await owned.Storage.ReadAsync(new GrainId("topic", "never"), State, CancellationToken.None));
    }

    [Fact]
    public async Task Write_read_and_clear_round_trip_with_versions_counting_up()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grain = new GrainId("topic", "orders");

        Assert.Equal(1, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":1}"""), 0, CancellationToken.None));
        var first = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"partitions":1}""", 1L), (Json.Text(first!.Payload), first.Version));

        Assert.Equal(2, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":2}"""), 1, CancellationToken.None));
        Assert.Equal(3, await storage.ClearAsync(grain, State, 2, CancellationToken.None));
        var cleared = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(((byte[]?)null, 3L), (cleared!.Payload, cleared.Version));

        Assert.Equal(4, await storage.WriteAsync(grain, State, Json.Bytes("""{"partitions":3}"""), 3, CancellationToken.None));
        var last = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"partitions":3}""", 4L), (Json.Text(last!.Payload), last.Version));
    }

    [Fact]
    public async Task Clear_of_a_grain_never_written_creates_an_empty_row_at_version_1()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("broker", "1");

        Assert.Equal(1, await owned.Storage.ClearAsync(grain, State, 0, CancellationToken.None));

        var row = await owned.Storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(((byte[]?)null, 1L), (row!.Payload, row.Version));
    }

    [Fact]
    public async Task Write_with_stale_version_is_rejected_and_changes_nothing()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var storage = owned.Storage;
        var grain = new GrainId("partition", "orders-0");
        await storage.WriteAsync(grain, State, Json.Bytes("""{"leader":1}"""), 0, CancellationToken.None);
        await storage.WriteAsync(grain, State, Json.Bytes("""{"leader":2}"""), 1, CancellationToken.None);

        var stale = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteAsync(grain, State, Json.Bytes("""{"leader":3}"""), 1, CancellationToken.None));
        var recreate = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteAsync(grain, State, Json.Bytes("""{"leader":4}"""), 0, CancellationToken.None));
        var staleClear = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.ClearAsync(grain, State, 7, CancellationToken.None));

        Assert.Equal((1L, 2L), (stale.ExpectedVersion, stale.StoredVersion));
        Assert.Equal((0L, 2L), (recreate.ExpectedVersion, recreate.StoredVersion));
        Assert.Equal((7L, 2L), (staleClear.ExpectedVersion, staleClear.StoredVersion));
        var row = await storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"leader":2}""", 2L), (Json.Text(row!.Payload), row.Version));
        Assert.Equal(3, storage.Statistics.Conflicts);
    }

    [Fact]
    public async Task Payload_bytes_come_back_exactly_as_written()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("consumer-group", "billing");
        // Key order, whitespace and number spelling all matter to someone; jsonb would rewrite each of them.
        var payload = Json.Bytes("""{ "id": 1, "$type": "group", "name": "fakturering \u00e9\u6f22", "lag": 1.50, "id": 2 }""");

        await owned.Storage.WriteAsync(grain, State, payload, 0, CancellationToken.None);

        Assert.Equal(payload, (await owned.Storage.ReadAsync(grain, State, CancellationToken.None))!.Payload);
    }

    [Fact]
    public async Task State_of_one_cluster_is_invisible_to_another_sharing_the_database()
    {
        await using var first = new OwnedStorage(fixture.Database, NewClusterId());
        await using var second = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("topic", "shared-name");

        await first.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None);

        Assert.Null(await second.Storage.ReadAsync(grain, State, CancellationToken.None));
        Assert.Equal(1, await second.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task Write_cancelled_before_it_is_sent_is_not_written()
    {
        await using var owned = new OwnedStorage(fixture.Database, NewClusterId());
        var grain = new GrainId("topic", "cancelled");

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => owned.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, new CancellationToken(canceled: true)));

        Assert.Null(await owned.Storage.ReadAsync(grain, State, CancellationToken.None));
        Assert.Equal(1, await owned.Storage.WriteAsync(grain, State, Json.Bytes("{}"), 0, CancellationToken.None));
    }

    [Fact]
    public async Task State_survives_disposing_the_storage_and_its_data_source()
    {
        var clusterId = NewClusterId();
        var grain = new GrainId("broker", "7");
        await using (var before = new OwnedStorage(fixture.Database, clusterId))
        {
            await before.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":1}"""), 0, CancellationToken.None);
            await before.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":2}"""), 1, CancellationToken.None);
        }

        await using var after = new OwnedStorage(fixture.Database, clusterId);
        var row = await after.Storage.ReadAsync(grain, State, CancellationToken.None);
        Assert.Equal(("""{"epoch":2}""", 2L), (Json.Text(row!.Payload), row.Version));
        Assert.Equal(3, await after.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":3}"""), 2, CancellationToken.None));
        await Assert.ThrowsAsync<InconsistentStateException>(
            () => after.Storage.WriteAsync(grain, State, Json.Bytes("""{"epoch":9}"""), 1, CancellationToken.None));
    }

    [Fact]
    public async Task Writes_accepted_before_dispose_are_flushed_and_later_writes_are_refused()
    {
        var clusterId = NewClusterId();
        var owned = new OwnedStorage(fixture.Database, clusterId);
        var writes = Enumerable.Range(0, 100)
            .Select(i => owned.Storage.WriteAsync(new GrainId("topic", $"t{i}"), State, Json.Bytes("{}"), 0, CancellationToken.None))
            .ToArray();

        await owned.DisposeAsync();

        Assert.All(await Task.WhenAll(writes), version => Assert.Equal(1, version));
        await Assert.ThrowsAsync<ObjectDisposedException>(
            () => owned.Storage.WriteAsync(new GrainId("topic", "late"), State, Json.Bytes("{}"), 0, CancellationToken.None));
    }
}
