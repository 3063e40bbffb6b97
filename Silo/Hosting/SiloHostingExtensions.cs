using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OrleansMeta.Grains;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Silo.Api;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Wires a silo: grain runtime, storage, membership, health checks, error responses and endpoints, in one place.</summary>
public static class SiloHostingExtensions
{
    /// <summary>The largest request body the public API accepts: 1 MiB.</summary>
    public const long MaxRequestBodySize = 1024 * 1024;

    /// <summary>The longest request target (path and query) the API answers: 8 KiB, Kestrel's default. Kestrel itself
    /// accepts request lines up to <see cref="KestrelRequestLineSize"/>, so that a longer target reaches the app and is
    /// refused with a problem body; beyond that Kestrel answers a bare 414.</summary>
    public const int MaxRequestTargetLength = 8 * 1024;

    private const int KestrelRequestLineSize = 64 * 1024;

    /// <summary>
    /// Registers everything a silo needs. With <c>ConnectionStrings:Postgres</c> set, state and membership live in
    /// PostgreSQL and the silo joins its cluster; without it the silo runs alone in development mode with in-memory
    /// storage. <paramref name="configureGrains"/> may add grains (tests add theirs).
    /// </summary>
    public static WebApplicationBuilder AddMetaSilo(this WebApplicationBuilder builder, Action<GrainRuntimeBuilder>? configureGrains = null)
    {
        var services = builder.Services;
        var configuration = builder.Configuration;
        services.AddOptions<SiloOptions>().Bind(configuration.GetSection(SiloOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SiloOptions>, SiloOptionsValidator>();

        var connectionString = configuration.GetConnectionString("Postgres");
        var clustered = !string.IsNullOrWhiteSpace(connectionString);

        // Registration order is start order (and reverse stop order): the schema first, then membership (joins after
        // the schema exists), then the grain runtime, which therefore stops before membership marks this silo Dead.
        var storage = clustered ? SiloStorage.Postgres(services, connectionString!, configuration) : SiloStorage.InMemory();
        services.AddSingleton(storage);
        if (clustered)
        {
            services.AddPostgresClusterMembership(configuration);
        }
        else
        {
            services.AddLocalClusterMembership(configuration);
        }

        // The URL clients reach this silo at goes into its membership row (an unusable one is reported by SiloOptionsValidator).
        services.AddOptions<ClusterOptions>().PostConfigure(cluster => cluster.ClientUrl =
            SiloListeners.AdvertisedUrl(configuration.GetSection(SiloOptions.SectionName)[nameof(SiloOptions.AdvertisedUrl)], configuration).Url?.AbsoluteUri);

        var runtime = services.AddGrainRuntime(configuration);
        if (storage.IsDevelopment)
        {
            runtime.UseInMemoryStorage();
        }

        runtime.UseCluster(configuration);
        runtime.AddMetaGrains(configuration);
        configureGrains?.Invoke(runtime);
        // Endpoints are set up in code (the silo endpoint needs HTTP/2 only), so Kestrel logs once at start that the
        // URLs setting is "overridden"; the same URLs are what it listens on.
        var publicUrls = SiloListeners.PublicUrls(configuration);
        builder.WebHost.ConfigureKestrel((context, kestrel) => SiloListeners.Configure(kestrel, publicUrls, context.Configuration, listenForSilos: clustered));

        services.AddHealthChecks()
            .AddCheck<SiloStartedHealthCheck>("silo", tags: ["ready"])
            .AddCheck<MembershipHealthCheck>("membership", tags: ["ready"])
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"])
            .AddCheck<MetadataHealthCheck>("metadata", tags: ["ready"]);
        services.AddHostedService<SiloStartupAnnouncer>();
        services.AddSingleton<MetadataResponseCache>();
        services.AddSingleton<SiloPeers>();
        services.AddOptions<LogOffsetsFanOutOptions>().Bind(configuration.GetSection(LogOffsetsFanOutOptions.SectionName))
            .Validate(options => options.IsValid, LogOffsetsFanOutOptions.ValidationMessage).ValidateOnStart();
        services.AddSingleton<LogOffsetsFanOut>();
        services.AddOptions<Watch.WatchOptions>().Bind(configuration.GetSection(Watch.WatchOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<Watch.WatchOptions>, Watch.WatchOptionsValidator>();
        services.AddSingleton<Watch.WatchHub>();

        services.AddProblemDetails(options => options.CustomizeProblemDetails = ProblemMapping.AddDefaults);
        services.AddExceptionHandler<ProblemMapping>();

        // Unreadable bodies and parameters throw, so the exception handler answers them like every other error.
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        services.ConfigureHttpJsonOptions(options => JsonInput.Configure(options.SerializerOptions));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = MaxRequestBodySize;
            kestrel.Limits.MaxRequestLineSize = KestrelRequestLineSize;
        });
        services.AddOpenApi(ApiDocs.Configure);
        return builder;
    }

    /// <summary>Maps health, OpenAPI, the public API and the silo-to-silo endpoints.</summary>
    public static WebApplication MapMetaSilo(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseSiloGuard();

        // A body announced as too large is refused before any of it is read, so a client that sent
        // "Expect: 100-continue" never uploads it (Kestrel's own limit only trips while the body is being read).
        app.Use(async (context, next) =>
        {
            if (context.Request.ContentLength > MaxRequestBodySize)
            {
                throw new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
            }

            // Kestrel's own 414 has no body; a target within Kestrel's (raised) limit but beyond ours gets a problem.
            if (context.Request.Path.Value?.Length + context.Request.QueryString.Value?.Length > MaxRequestTargetLength)
            {
                throw new BadHttpRequestException(
                    $"The request path and query are longer than this service accepts ({MaxRequestTargetLength} characters); send long lists in a body or in several requests.",
                    StatusCodes.Status414UriTooLong);
            }

            await next(context);
        });

        // Liveness: the process answers. Readiness: started, joined the cluster, and storage reachable.
        app.MapHealthChecks("/health/live", new() { Predicate = _ => false, ResponseWriter = HealthResponseWriter.WriteAsync });
        app.MapHealthChecks("/health/ready", new()
        {
            Predicate = check => check.Tags.Contains("ready"),
            ResponseWriter = HealthResponseWriter.WriteAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        });
        app.MapOpenApi();
        // The public API: every body passes one shape check (no nulls where the wire models require values) first.
        var api = app.MapGroup("").AddEndpointFilterFactory(RequestShape.Filter);
        api.MapClusterEndpoints();
        api.MapBrokerEndpoints();
        api.MapTopicEndpoints();
        api.MapGroupEndpoints();
        api.MapGroupListingEndpoints();
        api.MapLogOffsetsEndpoints();
        api.MapPartitionEndpoints();
        api.MapMetadataEndpoints();
        api.MapWatchEndpoints();
        app.MapGrainCallEndpoint();
        app.MapGroupListingPeerEndpoint();
        app.MapLogOffsetsPeerEndpoint();
        app.MapMembershipEndpoints();
        return app;
    }
}
