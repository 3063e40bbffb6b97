using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansMeta.Client;

// In the namespace of IServiceCollection, as ASP.NET Core's own Add* methods are, so that AddMetaClient shows up
// wherever services are configured without another using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="IMetaClient"/> in a service collection.</summary>
public static class MetaClientServiceCollectionExtensions
{
    /// <summary>Registers one shared <see cref="MetaClient"/> as <see cref="IMetaClient"/> (and as
    /// <see cref="MetaClient"/>), a singleton the container disposes, configured in code.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options, e.g. <c>o =&gt; o.BootstrapUrls.Add(new("http://meta-0:5080/"))</c>.</param>
    /// <returns>The options builder, to chain further configuration.</returns>
    /// <remarks>The options are validated when the client is first resolved, and at host start when a host runs
    /// (<see cref="OptionsBuilderExtensions.ValidateOnStart{TOptions}"/>): an <see cref="OptionsValidationException"/>
    /// lists every problem.</remarks>
    public static OptionsBuilder<MetaClientOptions> AddMetaClient(this IServiceCollection services, Action<MetaClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        return services.AddMetaClientCore().Configure(configure);
    }

    /// <summary>Registers one shared <see cref="MetaClient"/> as <see cref="IMetaClient"/> (and as
    /// <see cref="MetaClient"/>), configured from a configuration section, e.g. <c>configuration.GetSection("Meta:Client")</c>
    /// holding <c>BootstrapUrls:0 = http://meta-0:5080/</c>, <c>RequestTimeout = 00:00:10</c>, <c>MaxAttempts = 3</c>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section whose keys are <see cref="MetaClientOptions"/> property names.</param>
    /// <returns>The options builder, to chain further configuration (e.g. <c>.Configure(o =&gt; o.HttpMessageHandler = ...)</c>).</returns>
    /// <remarks>Validated as the other overload is.</remarks>
    public static OptionsBuilder<MetaClientOptions> AddMetaClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return services.AddMetaClientCore().Bind(configuration);
    }

    private static OptionsBuilder<MetaClientOptions> AddMetaClientCore(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MetaClientOptions>, MetaClientOptionsValidator>());
        services.TryAddSingleton(sp => new MetaClient(sp.GetRequiredService<IOptions<MetaClientOptions>>().Value));
        services.TryAddSingleton<IMetaClient>(sp => sp.GetRequiredService<MetaClient>());
        return services.AddOptions<MetaClientOptions>().ValidateOnStart();
    }
}

/// <summary>Runs <see cref="MetaClientOptions"/>' own checks when the options are built from the container.</summary>
internal sealed class MetaClientOptionsValidator : IValidateOptions<MetaClientOptions>
{
    public ValidateOptionsResult Validate(string? name, MetaClientOptions options)
    {
        var problems = options.Validate();
        return problems.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(problems.Select(p => "MetaClientOptions: " + p));
    }
}
