using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Runtime.Calls;
using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Runtime.Activation;

/// <summary>The services every activation needs, in one place.</summary>
internal sealed class GrainRuntime
{
    private IGrainCallDispatcher? _dispatcher;
    private Cluster.IClusterMembership? _membership;

    public GrainRuntime(
        IServiceProvider services,
        ActivationCatalog catalog,
        IGrainFactory grainFactory,
        IOptions<GrainRuntimeOptions> options,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory)
    {
        Services = services;
        Catalog = catalog;
        GrainFactory = grainFactory;
        Options = options.Value;
        TimeProvider = timeProvider;
        Logger = loggerFactory.CreateLogger("OrleansMeta.Runtime.Activation");
        catalog.Attach(this);
    }

    public IServiceProvider Services { get; }

    public ActivationCatalog Catalog { get; }

    /// <summary>Routes calls (to this silo or its peers); resolved late because routing depends on the catalog.</summary>
    public IGrainCallDispatcher Dispatcher => _dispatcher ??= Services.GetRequiredService<IGrainCallDispatcher>();

    public IGrainFactory GrainFactory { get; }

    public GrainRuntimeOptions Options { get; }

    public TimeProvider TimeProvider { get; }

    public ILogger Logger { get; }

    public bool IsStopping { get; set; }

    /// <summary>The silo's membership, when it runs in one (unit tests of the runtime may run without).</summary>
    public Cluster.IClusterMembership? Membership => _membership ??= Services.GetService<Cluster.IClusterMembership>();

    /// <summary>
    /// Whether this silo may act as the owner of its grains now: active in the cluster and holding its ownership lease.
    /// A silo that reads itself dead, is cut off from the membership table, or was paused past its lease does not,
    /// and its grains' timers must not act on memory that may already belong to another owner.
    /// </summary>
    public bool IsServing => Membership?.IsActive ?? true;
}
