using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Grains;

/// <summary>Registers the product grains with the runtime.</summary>
public static class GrainRegistration
{
    /// <summary>Adds every Orleans.Meta grain. The metadata grains (broker, topic, partition, controller) join here as
    /// they are built.</summary>
    public static GrainRuntimeBuilder AddMetaGrains(this GrainRuntimeBuilder runtime) => runtime;
}
