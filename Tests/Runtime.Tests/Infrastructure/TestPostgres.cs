using Microsoft.Extensions.Options;
using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Runtime.Tests.Infrastructure;

/// <summary>The throwaway PostgreSQL that scripts/test.sh starts for the test run.</summary>
public static class TestPostgres
{
    public const string Variable = "ORLEANS_META_TEST_POSTGRES";

    public static string ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException($"{Variable} is not set. Run the tests with scripts/test.sh, which starts a throwaway PostgreSQL and sets it.");

    /// <summary>Opens a storage on the test database for a cluster id no other test uses, after migrating the schema.</summary>
    public static async Task<(PostgresGrainStorage Storage, NpgsqlDataSource DataSource)> OpenStorageAsync(string clusterId)
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await new SchemaMigrator(dataSource).MigrateAsync();
        var storage = new PostgresGrainStorage(dataSource, Options.Create(new PostgresStorageOptions { ClusterId = clusterId }));
        return (storage, dataSource);
    }

    public static string NewClusterId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";
}
