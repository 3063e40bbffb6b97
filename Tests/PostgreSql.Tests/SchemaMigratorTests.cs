using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

public sealed class SchemaMigratorTests
{
    [Fact]
    public void Embedded_scripts_are_found_in_version_order_starting_with_grain_state()
    {
        var scripts = SchemaScript.LoadEmbedded();

        Assert.Equal((1, "001_grain_state"), (scripts[0].Version, scripts[0].Name));
        Assert.Equal(scripts.OrderBy(script => script.Version).Select(script => script.Version), scripts.Select(script => script.Version));
        Assert.Contains("CREATE TABLE grain_state", scripts[0].Sql, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Five_silos_migrating_a_fresh_database_at_once_apply_each_script_exactly_once()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: false);
        var dataSources = Enumerable.Range(0, 5).Select(_ => database.CreateDataSource()).ToArray();
        try
        {
            using var start = new Barrier(5);
            var runs = await Task.WhenAll(dataSources.Select(dataSource => Task.Run(async () =>
            {
                start.SignalAndWait(); // Line the five up so that they really do race.
                return await new SchemaMigrator(dataSource).MigrateAsync();
            })));

            var expected = SchemaScript.LoadEmbedded().Select(script => script.Version).ToArray();
            Assert.Equal(expected, runs.SelectMany(applied => applied).Order());
            Assert.Single(runs, applied => applied.Count > 0);
            Assert.Equal(expected, await AppliedVersionsAsync(dataSources[0]));

            Assert.Empty(await new SchemaMigrator(dataSources[0]).MigrateAsync());
            Assert.Equal(expected, await AppliedVersionsAsync(dataSources[0]));
        }
        finally
        {
            foreach (var dataSource in dataSources)
            {
                await dataSource.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Migration_creates_a_grain_state_table_the_storage_can_use()
    {
        await using var database = await TestDatabase.CreateAsync(migrate: false);
        await using (var dataSource = database.CreateDataSource())
        {
            await new SchemaMigrator(dataSource).MigrateAsync();
        }

        await using var owned = new OwnedStorage(database, "cluster");
        var grain = new OrleansMeta.Runtime.GrainId("topic", "t");
        Assert.Equal(1, await owned.Storage.WriteAsync(grain, "state", Json.Bytes("{}"), 0, CancellationToken.None));
    }

    private static async Task<int[]> AppliedVersionsAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT version FROM schema_migrations ORDER BY version");
        await using var reader = await command.ExecuteReaderAsync();
        var versions = new List<int>();
        while (await reader.ReadAsync())
        {
            versions.Add(reader.GetInt32(0));
        }

        return [.. versions];
    }
}
