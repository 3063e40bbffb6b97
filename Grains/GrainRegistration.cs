using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Groups;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Grains;

/// <summary>Registers the product grains and the services they need.</summary>
public static class GrainRegistration
{
    /// <summary>Adds the broker, topic, partition, controller and consumer group grains, the metadata image, its snapshot writer, and the controller keeper.</summary>
    public static GrainRuntimeBuilder AddMetaGrains(this GrainRuntimeBuilder runtime, IConfiguration? configuration = null)
    {
        var services = runtime.Services;
        var brokers = services.AddOptions<BrokerOptions>();
        var controller = services.AddOptions<ControllerOptions>();
        var groups = services.AddOptions<GroupOptions>();
        var snapshots = services.AddOptions<MetadataSnapshotOptions>();
        if (configuration is not null)
        {
            brokers.Bind(configuration.GetSection(BrokerOptions.SectionName));
            controller.Bind(configuration.GetSection(ControllerOptions.SectionName));
            groups.Bind(configuration.GetSection(GroupOptions.SectionName));
            snapshots.Bind(configuration.GetSection(MetadataSnapshotOptions.SectionName));
        }

        brokers.ValidateOnStart();
        controller.ValidateOnStart();
        groups.ValidateOnStart();
        snapshots.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MetadataSnapshotOptions>, MetadataSnapshotOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GroupOptions>, GroupOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BrokerOptions>, MetaOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ControllerOptions>, MetaOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRemoteExceptionRegistration, MetaExceptionRegistration>());
        services.TryAddSingleton<MetadataImageService>();
        services.AddHostedService(sp => sp.GetRequiredService<MetadataImageService>());
        services.AddSingleton<IJoinGate>(sp => sp.GetRequiredService<MetadataImageService>());
        services.AddHostedService<ControllerKeeper>();
        services.TryAddSingleton<MetadataSnapshotWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<MetadataSnapshotWriter>());
        services.TryAddSingleton<LogOffsetsTable>();
        services.TryAddSingleton<GroupDirectory>();
        services.AddHostedService<GroupLoader>();
        return runtime
            .AddCompiledStateJson(GrainStateJsonContext.Default)
            .AddGrain<IBrokerGrain, BrokerGrain>()
            .AddGrain<ITopicGrain, TopicGrain>()
            .AddGrain<IPartitionGrain, PartitionGrain>()
            .AddGrain<IPartitionBatchGrain, PartitionBatchGrain>()
            .AddGrain<ITopicBatchGrain, TopicBatchGrain>()
            .AddGrain<IControllerGrain, ControllerGrain>()
            .AddGrain<IConsumerGroupGrain, ConsumerGroupGrain>();
    }
}
