using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>Registers PostgreSQL grain storage.</summary>
public static class PostgresStorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers an <see cref="NpgsqlDataSource"/> for <paramref name="connectionString"/> (unless one is already
    /// registered), then everything <see cref="AddPostgresGrainStorage(IServiceCollection, string)"/> registers.
    /// </summary>
    public static IServiceCollection AddPostgresGrainStorage(this IServiceCollection services, string connectionString, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        services.TryAddSingleton(provider => DataSource(connectionString, provider.GetService<ILoggerFactory>()));
        return services.AddPostgresGrainStorage(clusterId);
    }

    /// <summary>
    /// The data source for <paramref name="connectionString"/>. Unless the connection string says otherwise, connections
    /// go back to the pool without a session reset (<c>No Reset On Close</c>): every setting the storage changes is
    /// scoped to its transaction (<c>set_config(..., true)</c>, transaction advisory locks), and the log's listener
    /// unlistens before its connection goes back, so the reset (a statement PostgreSQL runs at every checkout) would
    /// only cost time.
    /// </summary>
    public static NpgsqlDataSource DataSource(string connectionString, ILoggerFactory? loggerFactory = null)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString).UseLoggerFactory(loggerFactory);
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
        {
            builder.ConnectionStringBuilder.NoResetOnClose = true;
        }

        return builder.Build();
    }

    /// <summary>
    /// Registers <see cref="PostgresGrainStorage"/> as the singleton <see cref="IGrainStorage"/> on the
    /// <see cref="NpgsqlDataSource"/> already registered, <see cref="PostgresMetadataLog"/> (same data source and
    /// cluster id) as the singleton <see cref="IMetadataLog"/>, <see cref="PostgresMetadataSnapshots"/> as the singleton
    /// <see cref="IMetadataSnapshotStore"/>, <see cref="PostgresOffsetStore"/> (same data source,
    /// cluster id and writer fence) as the singleton <see cref="IOffsetStore"/>, the <see cref="SchemaMigrator"/>, validation of
    /// <see cref="PostgresStorageOptions"/> at start-up, and a hosted service that migrates the schema when the host
    /// starts. Register this before the services that need the schema: hosted services start in registration order.
    /// </summary>
    public static IServiceCollection AddPostgresGrainStorage(this IServiceCollection services, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<PostgresStorageOptions>()
            .Configure(options => options.ClusterId = clusterId)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgresStorageOptions>, PostgresStorageOptionsValidator>());
        services.TryAddSingleton<SchemaMigrator>();
        services.TryAddSingleton<PostgresGrainStorage>();
        services.TryAddSingleton<IGrainStorage>(provider => provider.GetRequiredService<PostgresGrainStorage>());
        services.TryAddSingleton<PostgresMetadataLog>();
        services.TryAddSingleton<IMetadataLog>(provider => provider.GetRequiredService<PostgresMetadataLog>());
        services.TryAddSingleton<PostgresMetadataSnapshots>();
        services.TryAddSingleton<IMetadataSnapshotStore>(provider => provider.GetRequiredService<PostgresMetadataSnapshots>());
        services.TryAddSingleton<PostgresOffsetStore>();
        services.TryAddSingleton<IOffsetStore>(provider => provider.GetRequiredService<PostgresOffsetStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgresSchemaHostedService>());
        return services;
    }
}

/// <summary>Migrates the schema when the host starts, before the hosted services registered after it.</summary>
public sealed class PostgresSchemaHostedService(SchemaMigrator migrator) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => migrator.MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
