using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Runtime.Placement;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Runtime.Hosting;

/// <summary>Registers grains and storage with the runtime.</summary>
public sealed class GrainRuntimeBuilder(IServiceCollection services, GrainTypeRegistry registry)
{
    public IServiceCollection Services { get; } = services;

    /// <summary>Registers <typeparamref name="TGrain"/> as the implementation of <typeparamref name="TInterface"/>.</summary>
    public GrainRuntimeBuilder AddGrain<TInterface, TGrain>()
        where TInterface : IGrainWithStringKey
        where TGrain : Grain, TInterface
    {
        registry.Register(typeof(TInterface), typeof(TGrain));
        return this;
    }

    /// <summary>
    /// Spreads grains over the silos of a cluster: hash placement over the membership view, calls forwarded to the
    /// owner over HTTP/2, hand-over when the view changes. Needs an <see cref="IClusterMembership"/> registration and
    /// the silo endpoints mapped (<c>MapGrainCallEndpoint</c> and the membership endpoints).
    /// </summary>
    public GrainRuntimeBuilder UseCluster(IConfiguration? configuration = null)
    {
        var options = Services.AddOptions<ClusterOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(ClusterOptions.SectionName));
        }

        options.ValidateOnStart();
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterOptions>, ClusterOptionsValidator>());
        Services.TryAddSingleton<SiloHttpClient>();
        Services.TryAddSingleton<RemoteExceptionCodec>();
        Services.TryAddSingleton<GrainCallCodec>();
        Services.TryAddSingleton<ClusterCallDispatcher>();
        // A leaving silo waits, in this order, for peers' calls routed on older views, then for its grains to deactivate;
        // then it marks itself Dead, and new owners load those grains (docs/safety.md).
        Services.TryAddSingleton<InboundGrainCalls>();
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILeaveDrain, InboundGrainCalls>(sp => sp.GetRequiredService<InboundGrainCalls>()));
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILeaveDrain, ActivationCollector.LeaveDrain>());
        Services.Replace(ServiceDescriptor.Singleton<IGrainCallDispatcher>(sp => sp.GetRequiredService<ClusterCallDispatcher>()));
        Services.TryAddSingleton<GrainLocator>();
        Services.AddHostedService<PlacementRebalancer>();
        return this;
    }

    /// <summary>
    /// Grain state of the types <paramref name="resolver"/> knows (a source-generated <c>JsonSerializerContext</c>,
    /// generated with the state serializer's options, web defaults unless configured) is written and read with its
    /// compiled code instead of reflection (<see cref="GrainStateSerializer.AddCompiled"/>).
    /// </summary>
    public GrainRuntimeBuilder AddCompiledStateJson(IJsonTypeInfoResolver resolver)
    {
        var registered = Services.LastOrDefault(d => d.ServiceType == typeof(GrainStateSerializer));
        if (registered?.ImplementationInstance is not GrainStateSerializer serializer)
        {
            throw new InvalidOperationException(
                "AddCompiledStateJson needs the GrainStateSerializer registered as an instance (AddGrainRuntime does so); register yours as an instance too, or add the resolver to its options yourself.");
        }

        serializer.AddCompiled(resolver);
        return this;
    }

    /// <summary>Keeps grain state, the metadata log and committed offsets in process memory: development mode and unit tests only.</summary>
    public GrainRuntimeBuilder UseInMemoryStorage()
    {
        Services.TryAddSingleton<InMemoryGrainStorage>();
        Services.Replace(ServiceDescriptor.Singleton<IGrainStorage>(sp => sp.GetRequiredService<InMemoryGrainStorage>()));
        Services.Replace(ServiceDescriptor.Singleton<IMetadataLog>(sp => sp.GetRequiredService<InMemoryGrainStorage>()));
        Services.TryAddSingleton<InMemoryOffsetStore>();
        Services.Replace(ServiceDescriptor.Singleton<IOffsetStore>(sp => sp.GetRequiredService<InMemoryOffsetStore>()));
        return this;
    }
}

public static class GrainRuntimeServiceCollectionExtensions
{
    /// <summary>
    /// Adds the grain runtime: activations, the call path, timers, idle collection, and <see cref="IGrainFactory"/>.
    /// Storage must be added too (<see cref="GrainRuntimeBuilder.UseInMemoryStorage"/> or the PostgreSQL provider).
    /// </summary>
    public static GrainRuntimeBuilder AddGrainRuntime(this IServiceCollection services, IConfiguration? configuration = null)
    {
        var registry = new GrainTypeRegistry();
        var options = services.AddOptions<GrainRuntimeOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection(GrainRuntimeOptions.SectionName));
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GrainRuntimeOptions>, GrainRuntimeOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new GrainStateSerializer());
        services.AddSingleton(registry);
        services.AddSingleton<ActivationCatalog>();
        services.AddSingleton<IGrainCallDispatcher>(sp => sp.GetRequiredService<ActivationCatalog>());
        services.AddSingleton<GrainCallInvoker>();
        services.AddSingleton<IGrainFactory, GrainFactory>();
        services.AddSingleton<GrainRuntime>();
        services.AddSingleton<ActivationCollector>();
        services.AddHostedService(sp =>
        {
            // Building the runtime attaches it to the catalog, so calls work from the moment the host starts.
            sp.GetRequiredService<GrainRuntime>();
            return sp.GetRequiredService<ActivationCollector>();
        });
        return new GrainRuntimeBuilder(services, registry);
    }
}
