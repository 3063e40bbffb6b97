using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Tests.Shared;

/// <summary>
/// A throwaway database of its own on the server named by ORLEANS_META_TEST_POSTGRES, dropped on dispose: for tests
/// that need tables no other test touches (schema migration, whole-table reads, lock waits).
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    /// <summary>The environment variable that names the server (same as <see cref="TestPostgres.Variable"/>).</summary>
    public const string EnvironmentVariable = TestPostgres.Variable;

    private readonly string _adminConnectionString;

    private TestDatabase(string adminConnectionString, string name, string connectionString)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    /// <summary>Creates the database (the server's user must be allowed to) and, if asked, migrates it to the current
    /// schema.</summary>
    public static async Task<TestDatabase> CreateAsync(bool migrate)
    {
        var admin = TestPostgres.ConnectionString;
        var name = "om_test_" + Guid.NewGuid().ToString("N");
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }

        var database = new TestDatabase(admin, name, new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString);
        if (migrate)
        {
            await using var dataSource = database.CreateDataSource();
            await new SchemaMigrator(dataSource).MigrateAsync();
        }

        return database;
    }

    /// <summary>A new data source on this database; the caller disposes it.</summary>
    public NpgsqlDataSource CreateDataSource() => NpgsqlDataSource.Create(ConnectionString);

    public async ValueTask DisposeAsync()
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>One migrated database per test class (<c>IClassFixture&lt;MigratedDatabaseFixture&gt;</c>).</summary>
public sealed class MigratedDatabaseFixture : IAsyncLifetime
{
    private TestDatabase? _database;

    public TestDatabase Database => _database ?? throw new InvalidOperationException("The fixture was not initialised.");

    public async Task InitializeAsync() => _database = await TestDatabase.CreateAsync(migrate: true);

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
