using Npgsql;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Which storage this silo uses, how to describe it, and how to check that it answers.</summary>
public sealed class SiloStorage
{
    private readonly Func<CancellationToken, Task> _ping;

    private SiloStorage(string description, bool isDevelopment, Func<CancellationToken, Task> ping)
    {
        Description = description;
        IsDevelopment = isDevelopment;
        _ping = ping;
    }

    public string Description { get; }

    /// <summary>True in development mode: nothing survives the process.</summary>
    public bool IsDevelopment { get; }

    public Task PingAsync(CancellationToken cancellationToken) => _ping(cancellationToken);

    internal static SiloStorage InMemory()
    {
        return new SiloStorage("in-memory storage (development mode; state is lost when the silo stops)", isDevelopment: true, _ => Task.CompletedTask);
    }

    /// <summary>Configuration section of the PostgreSQL storage's tuning options.</summary>
    public const string StorageSection = "Meta:Storage";

    internal static SiloStorage Postgres(IServiceCollection services, string connectionString, IConfiguration configuration)
    {
        var clusterId = configuration.GetSection(SiloOptions.SectionName)[nameof(SiloOptions.ClusterId)] ?? new SiloOptions().ClusterId;
        services.AddPostgresGrainStorage(connectionString, clusterId);

        // Batch sizes and concurrency (Meta:Storage:MaxBatchSize, ...); the cluster id always comes from Meta:ClusterId.
        services.AddOptions<PostgresStorageOptions>().Bind(configuration.GetSection(StorageSection)).PostConfigure(o => o.ClusterId = clusterId);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var description = $"PostgreSQL at {builder.Host}:{builder.Port}/{builder.Database}";
        return new SiloStorage(description, isDevelopment: false, async cancellationToken =>
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(cancellationToken);
        });
    }
}
