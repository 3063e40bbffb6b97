using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OrleansMeta.Grains;
using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Silo.Hosting;

/// <summary>Wires a silo: grain runtime, storage, health checks, error responses and endpoints, in one place.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Registers everything a silo needs. With <c>ConnectionStrings:Postgres</c> set, state lives in PostgreSQL;
    /// without it the silo runs in development mode with in-memory storage.</summary>
    public static WebApplicationBuilder AddMetaSilo(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<SiloOptions>().Bind(builder.Configuration.GetSection(SiloOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SiloOptions>, SiloOptionsValidator>();

        var runtime = services.AddGrainRuntime(builder.Configuration);
        runtime.AddMetaGrains();

        var connectionString = builder.Configuration.GetConnectionString("Postgres");
        var storage = string.IsNullOrWhiteSpace(connectionString)
            ? SiloStorage.UseInMemory(runtime)
            : SiloStorage.UsePostgres(runtime, connectionString, builder.Configuration);
        services.AddSingleton(storage);

        services.AddHealthChecks()
            .AddCheck<SiloStartedHealthCheck>("silo", tags: ["ready"])
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);
        services.AddSingleton<SiloStartedHealthCheck>();
        services.AddHostedService<SiloStartupAnnouncer>();

        services.AddProblemDetails();
        services.AddOpenApi();
        return builder;
    }

    /// <summary>Maps health, OpenAPI and the public API.</summary>
    public static WebApplication MapMetaSilo(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();

        // Liveness: the process answers. Readiness: started, and storage reachable.
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
        return app;
    }
}
