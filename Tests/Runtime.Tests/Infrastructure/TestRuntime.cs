using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansMeta.Runtime.Activation;
using OrleansMeta.Runtime.Hosting;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Runtime.Tests.Infrastructure;

/// <summary>One silo's grain runtime without a web host: its own DI container, a manual clock, in-memory storage unless
/// a shared storage is passed (two runtimes over one storage behave like two silos).</summary>
public sealed class TestRuntime : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly List<IHostedService> _hosted;

    private TestRuntime(ServiceProvider services)
    {
        _services = services;
        _hosted = services.GetServices<IHostedService>().ToList();
    }

    public ManualTimeProvider Time { get; private set; } = null!;

    public IGrainFactory Grains => _services.GetRequiredService<IGrainFactory>();

    public TestProbe Probe => _services.GetRequiredService<TestProbe>();

    internal ActivationCatalog Catalog => _services.GetRequiredService<ActivationCatalog>();

    internal ActivationCollector Collector => _services.GetRequiredService<ActivationCollector>();

    public static async Task<TestRuntime> StartAsync(
        Action<GrainRuntimeOptions>? configure = null, IGrainStorage? storage = null, TestProbe? probe = null, Cluster.IClusterMembership? membership = null)
    {
        var time = new ManualTimeProvider();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton(probe ?? new TestProbe());
        var builder = services.AddGrainRuntime().UseInMemoryStorage();
        if (storage is not null)
        {
            services.AddSingleton(storage);
        }

        if (membership is not null)
        {
            services.AddSingleton(membership);
        }

        services.Configure<GrainRuntimeOptions>(o => configure?.Invoke(o));
        TestGrainRegistration.AddTestGrains(builder);
        var runtime = new TestRuntime(services.BuildServiceProvider()) { Time = time };
        foreach (var hosted in runtime._hosted)
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        return runtime;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var hosted in _hosted)
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await hosted.StopAsync(stopTimeout.Token);
        }

        await _services.DisposeAsync();
    }
}
