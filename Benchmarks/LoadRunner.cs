using System.Diagnostics;

namespace OrleansMeta.Benchmarks;

/// <summary>The result of one measured scenario.</summary>
public sealed record Measurement(string Scenario, int Concurrency, long Operations, TimeSpan Elapsed, double P50Micros, double P99Micros)
{
    public double PerSecond => Operations / Elapsed.TotalSeconds;
}

/// <summary>Runs an operation from many concurrent workers for a fixed time after a warm-up, recording latencies.</summary>
public static class LoadRunner
{
    public static async Task<Measurement> RunAsync(string scenario, int concurrency, TimeSpan warmup, TimeSpan duration, Func<int, long, Task> operation)
    {
        await RunPhaseAsync(concurrency, warmup, operation, record: false);
        var (operations, elapsed, latencies) = await RunPhaseAsync(concurrency, duration, operation, record: true);
        latencies.Sort();
        double Percentile(double p) => latencies.Count == 0 ? 0 : latencies[(int)Math.Min(latencies.Count - 1, p * latencies.Count)] * 1_000_000.0 / Stopwatch.Frequency;
        return new Measurement(scenario, concurrency, operations, elapsed, Percentile(0.50), Percentile(0.99));
    }

    private static async Task<(long Operations, TimeSpan Elapsed, List<long> Latencies)> RunPhaseAsync(
        int concurrency, TimeSpan duration, Func<int, long, Task> operation, bool record)
    {
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var perWorker = new List<long>[concurrency];
        var counts = new long[concurrency];
        var started = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            // Sample latencies (every 16th call) to keep the recording itself cheap.
            var samples = new List<long>(4096);
            long n = 0;
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var begin = Stopwatch.GetTimestamp();
                await operation(worker, n);
                if (record && (n & 15) == 0)
                {
                    samples.Add(Stopwatch.GetTimestamp() - begin);
                }

                n++;
            }

            counts[worker] = n;
            perWorker[worker] = samples;
        })));
        started.Stop();
        return (counts.Sum(), started.Elapsed, perWorker.SelectMany(s => s).ToList());
    }
}
