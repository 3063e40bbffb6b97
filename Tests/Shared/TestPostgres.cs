using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Tests.Shared;

/// <summary>
/// The PostgreSQL that scripts/test.sh starts for the test run, named by ORLEANS_META_TEST_POSTGRES. Test classes run
/// in parallel against it, so each test uses its own cluster id (<see cref="NewClusterId"/>), or its own database
/// (<see cref="TestDatabase"/>) where cluster ids do not isolate enough.
/// </summary>
public static class TestPostgres
{
    /// <summary>The environment variable that holds the Npgsql connection string of a superuser.</summary>
    public const string Variable = "ORLEANS_META_TEST_POSTGRES";

    private static readonly Lazy<Task<NpgsqlDataSource>> Shared = new(async () =>
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await new SchemaMigrator(dataSource).MigrateAsync();
        return dataSource;
    });

    /// <summary>The connection string, or a message that says how to get one.</summary>
    public static string ConnectionString => Environment.GetEnvironmentVariable(Variable) is { } value && !string.IsNullOrWhiteSpace(value)
        ? value
        : throw new InvalidOperationException(
            $"{Variable} is not set. These tests need a real PostgreSQL: run scripts/test.sh, which starts a throwaway server " +
            "and sets it, or set it yourself to an Npgsql connection string of a superuser (see CONTRIBUTING.md).");

    /// <summary>A cluster id no other test uses, so tests sharing the database never see each other's rows; at most
    /// 63 characters.</summary>
    public static string NewClusterId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)];

    /// <summary>A data source on the test database, migrated once per test run, for the tests' own reads and writes.
    /// Shared: do not dispose it.</summary>
    public static Task<NpgsqlDataSource> DataSourceAsync() => Shared.Value;

    /// <summary>Opens a storage on the test database for a cluster id no other test uses, after migrating the schema.
    /// The caller disposes the data source.</summary>
    public static async Task<(PostgresGrainStorage Storage, NpgsqlDataSource DataSource)> OpenStorageAsync(string clusterId)
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await new SchemaMigrator(dataSource).MigrateAsync();
        var storage = new PostgresGrainStorage(dataSource, Options.Create(new PostgresStorageOptions { ClusterId = clusterId }));
        return (storage, dataSource);
    }

    /// <summary>The status column of one silo's membership row.</summary>
    public static async Task<string> StatusAsync(string clusterId, string endpoint, long generation)
    {
        var dataSource = await DataSourceAsync();
        await using var command = dataSource.CreateCommand("SELECT status FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3");
        command.Parameters.AddWithValue(clusterId);
        command.Parameters.AddWithValue(endpoint);
        command.Parameters.AddWithValue(generation);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Runs one statement with positional parameters ($1, $2, ...) on the test database.</summary>
    public static async Task ExecuteAsync(string sql, params object[] parameters)
    {
        var dataSource = await DataSourceAsync();
        await using var command = dataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.AddWithValue(parameter);
        }

        await command.ExecuteNonQueryAsync();
    }
}
