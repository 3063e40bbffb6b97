using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Membership.Tests.Infrastructure;

/// <summary>The PostgreSQL that scripts/test.sh starts for the test run; every test uses its own cluster id.</summary>
public static class TestPostgres
{
    public const string Variable = "ORLEANS_META_TEST_POSTGRES";

    private static readonly Lazy<Task<NpgsqlDataSource>> Shared = new(async () =>
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await new SchemaMigrator(dataSource).MigrateAsync();
        return dataSource;
    });

    public static string ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException($"{Variable} is not set. Run the tests with scripts/test.sh, which starts a throwaway PostgreSQL and sets it.");

    /// <summary>A migrated data source for the tests' own reads and writes of the membership table.</summary>
    public static Task<NpgsqlDataSource> DataSourceAsync() => Shared.Value;

    public static string NewClusterId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static async Task<string> StatusAsync(string clusterId, string endpoint, long generation)
    {
        var dataSource = await DataSourceAsync();
        await using var command = dataSource.CreateCommand("SELECT status FROM membership WHERE cluster_id = $1 AND endpoint = $2 AND generation = $3");
        command.Parameters.AddWithValue(clusterId);
        command.Parameters.AddWithValue(endpoint);
        command.Parameters.AddWithValue(generation);
        return (string)(await command.ExecuteScalarAsync())!;
    }

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
