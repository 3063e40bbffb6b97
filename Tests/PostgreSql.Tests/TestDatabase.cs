using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>
/// A database of its own on the server named by ORLEANS_META_TEST_POSTGRES, dropped on dispose. Test classes run in
/// parallel, so each gets its own database rather than sharing tables.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string EnvironmentVariable = "ORLEANS_META_TEST_POSTGRES";

    private readonly string _adminConnectionString;

    private TestDatabase(string adminConnectionString, string name, string connectionString)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public static async Task<TestDatabase> CreateAsync(bool migrate)
    {
        var admin = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(admin))
        {
            throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set. These tests need a real PostgreSQL: run scripts/test.sh, which starts " +
                "a throwaway server and sets it (or set it yourself to an Npgsql connection string of a superuser).");
        }

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

    public NpgsqlDataSource CreateDataSource() => NpgsqlDataSource.Create(ConnectionString);

    public async ValueTask DisposeAsync()
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>One migrated database per test class.</summary>
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
