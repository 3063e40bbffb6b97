using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Benchmarks;

/// <summary>In-silo grain call rate: many callers over many grains, and many callers on one grain.</summary>
public static class GrainCallScenario
{
    public static async Task<IReadOnlyList<Measurement>> RunAsync(TimeSpan warmup, TimeSpan duration)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddGrainRuntime().UseInMemoryStorage().AddGrain<IEchoGrain, EchoGrain>();
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        foreach (var service in hosted)
        {
            await service.StartAsync(CancellationToken.None);
        }

        var factory = provider.GetRequiredService<IGrainFactory>();
        var grains = Enumerable.Range(0, 1000).Select(i => factory.GetGrain<IEchoGrain>($"echo-{i}")).ToArray();
        var results = new List<Measurement>
        {
            await LoadRunner.RunAsync("in-silo grain call, 1000 grains", 64, warmup, duration,
                (worker, n) => grains[(int)((worker * 7919 + n) % grains.Length)].EchoAsync(worker)),
            await LoadRunner.RunAsync("in-silo grain call, 1 grain (one turn at a time)", 64, warmup, duration,
                (worker, _) => grains[0].EchoAsync(worker)),
            await LoadRunner.RunAsync("baseline: direct async method call (no runtime)", 64, warmup, duration,
                (worker, _) => DirectAsync(worker)),
        };

        foreach (var service in hosted)
        {
            await service.StopAsync(CancellationToken.None);
        }

        return results;
    }

    private static async Task<int> DirectAsync(int value)
    {
        await Task.Yield();
        return value;
    }
}
