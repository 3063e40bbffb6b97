using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Cluster.PostgreSql;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>Registers cluster membership.</summary>
public static class MembershipServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="PostgresClusterMembership"/> as <see cref="IClusterMembership"/> and as a hosted service,
    /// with <see cref="ClusterOptions"/> (<c>Meta:Cluster</c>, where a ClusterSecret becomes required) and
    /// <see cref="MembershipOptions"/> (<c>Meta:Membership</c>) bound from <paramref name="configuration"/> when given
    /// and validated at start-up. It uses the NpgsqlDataSource and the cluster id (<c>PostgresStorageOptions.ClusterId</c>)
    /// registered by <c>AddPostgresGrainStorage</c>: call that first, so the schema is migrated before this service
    /// joins, and register this before the grain runtime, so the runtime stops before this silo is marked Dead.
    /// </summary>
    public static IServiceCollection AddPostgresClusterMembership(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        AddClusterOptions(services, configuration);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterOptions>, ClusterSecretRequiredValidator>());
        var options = services.AddOptions<MembershipOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(MembershipOptions.SectionName));
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MembershipOptions>, MembershipOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SiloHttpClient>();
        services.TryAddSingleton<PostgresClusterMembership>();
        services.TryAddSingleton<JoinHandOver>();
        services.TryAddSingleton<IClusterMembership>(provider => provider.GetRequiredService<PostgresClusterMembership>());
        services.TryAddSingleton<Persistence.IWriterFence>(provider => provider.GetRequiredService<PostgresClusterMembership>());
        services.AddHostedService(provider => provider.GetRequiredService<PostgresClusterMembership>());
        return services;
    }

    /// <summary>Registers <see cref="LocalClusterMembership"/>: one silo, always Active (development mode).</summary>
    public static IServiceCollection AddLocalClusterMembership(this IServiceCollection services, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        AddClusterOptions(services, configuration);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IClusterMembership, LocalClusterMembership>();
        return services;
    }

    private static void AddClusterOptions(IServiceCollection services, IConfiguration? configuration)
    {
        var cluster = services.AddOptions<ClusterOptions>();
        if (configuration is not null)
        {
            cluster.Bind(configuration.GetSection(ClusterOptions.SectionName));
        }

        cluster.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterOptions>, ClusterOptionsValidator>());
    }
}

/// <summary>With PostgreSQL membership the silo routes are reachable by peers, so they must be guarded by a secret.</summary>
internal sealed class ClusterSecretRequiredValidator : IValidateOptions<ClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterOptions options) =>
        string.IsNullOrEmpty(options.ClusterSecret)
            ? ValidateOptionsResult.Fail($"{ClusterOptions.SectionName}:ClusterSecret is required with PostgreSQL membership: set the same long random value " +
                                         "on every silo (for example `openssl rand -hex 32`), so that only members can probe and notify each other.")
            : ValidateOptionsResult.Success;
}
