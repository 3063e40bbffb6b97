using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Silo.Watch;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Slow watchers against a silo under a steady stream of metadata writes: the silo's managed heap over time with ten
/// watchers that read 1 KiB a second (and reconnect from where they were when cut off), next to the same writes with
/// no watcher, in the same run on the same silo.
/// </summary>
public static partial class WatchScenario
{
    private const int Writers = 16;
    private const int SlowWatchers = 10;
    private const int ReadBytesPerSecond = 1024;

    public static async Task<IReadOnlyList<string>> RunAsync(string connectionString, TimeSpan duration)
    {
        var notes = new List<string>();
        await using var silo = await MetadataScenario.StartSiloAsync(connectionString, TimeSpan.FromSeconds(30));
        var grains = silo.App.Services.GetRequiredService<IGrainFactory>();
        var image = silo.App.Services.GetRequiredService<MetadataImageService>();
        var hub = silo.App.Services.GetRequiredService<WatchHub>();
        using var alive = new CancellationTokenSource();
        var loops = await MetadataScenario.RegisterBrokersAsync(grains, image, 3, alive.Token);
        for (var t = 0; t < Writers; t++)
        {
            var created = await grains.GetGrain<ITopicGrain>(Topic(t)).CreateAsync(new CreateTopic(Topic(t), 3, 3, null, null));
            await image.WaitForAsync(created.MetadataOffset, TimeSpan.FromSeconds(30));
        }

        // Warm-up: fill the ring (it holds a fixed number of records), so that neither phase measures it filling.
        var capacity = silo.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<WatchOptions>>().Value.RingCapacity;
        while (hub.Size.Records < capacity)
        {
            await WriteAsync(grains, TimeSpan.FromSeconds(2));
        }

        var quiet = await PhaseAsync(grains, duration, watchers: null);
        notes.Add(quiet.Describe("no watcher"));

        using var stopWatchers = new CancellationTokenSource();
        var watchers = Enumerable.Range(0, SlowWatchers).Select(_ => new SlowWatcher(silo.Address)).ToList();
        // Half start from the beginning of the log (catching up through log pages), half from the live tail (served
        // from the ring until they fall MaxLagRecords behind and are cut off).
        var tail = image.Current.Offset + 1;
        var reading = watchers.Select((w, i) => w.RunAsync(fromOffset: i % 2 == 0 ? 1 : tail, stopWatchers.Token)).ToList();
        var slow = await PhaseAsync(grains, duration, watchers);
        await stopWatchers.CancelAsync();
        await Task.WhenAll(reading);
        notes.Add(slow.Describe($"{SlowWatchers} watchers reading {ReadBytesPerSecond} B/s (5 from offset 1, 5 from the tail)"));
        var (records, bytes) = hub.Size;
        notes.Add($"watch: slow watchers (from 1, from the tail alternately) reached offsets {string.Join(", ", watchers.Select(w => w.LastId))} of {image.Current.Offset}; " +
            $"{watchers.Sum(w => w.CutOffs)} cut-offs, {watchers.Sum(w => w.Connections)} connections, {watchers.Sum(w => w.BytesRead) / 1024} KiB read; ring {records} records, {bytes / 1024.0 / 1024:0.0} MiB");

        await alive.CancelAsync();
        await Task.WhenAll(loops);
        return notes;
    }

    private static string Topic(int t) => $"watched{t}";

    private static async Task<Phase> PhaseAsync(IGrainFactory grains, TimeSpan duration, List<SlowWatcher>? watchers)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var samples = new List<(double Seconds, long Heap)>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var sampling = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                samples.Add((clock.Elapsed.TotalSeconds, GC.GetGCMemoryInfo().HeapSizeBytes));
                try
                {
                    await Task.Delay(250, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
        var writes = await WriteAsync(grains, duration);
        await stop.CancelAsync();
        await sampling;
        var after = GC.GetTotalMemory(forceFullCollection: true);

        // The heap seen in each fifth of the phase: growth without bound would show as a rising series.
        var fifths = Enumerable.Range(0, 5).Select(i => samples.Where(s => s.Seconds >= clock.Elapsed.TotalSeconds * i / 5 && s.Seconds < clock.Elapsed.TotalSeconds * (i + 1) / 5)
            .Select(s => s.Heap).DefaultIfEmpty(0).Max()).ToList();
        return new Phase(writes, duration, before, after, samples.Max(s => s.Heap), fifths);
    }

    private static async Task<long> WriteAsync(IGrainFactory grains, TimeSpan duration)
    {
        long writes = 0;
        var until = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(t => Task.Run(async () =>
        {
            var grain = grains.GetGrain<ITopicGrain>(Topic(t));
            for (var j = 0; until.Elapsed < duration; j++)
            {
                await grain.AlterConfigsAsync(Topic(t), new Dictionary<string, string?> { ["retention.ms"] = (1000 + j).ToString(CultureInfo.InvariantCulture) }, false);
                Interlocked.Increment(ref writes);
            }
        })));
        return writes;
    }

    private sealed record Phase(long Writes, TimeSpan Duration, long Before, long After, long Peak, List<long> Fifths)
    {
        public string Describe(string what) =>
            $"watch: {what}: {Writes} writes in {Duration.TotalSeconds:0} s ({Writes / Duration.TotalSeconds:N0}/s); managed heap " +
            $"{Mb(Before)} MiB before, peak {Mb(Peak)} MiB, {Mb(After)} MiB after a full GC; peak per fifth of the phase: {string.Join(" ", Fifths.Select(Mb))} MiB";

        private static string Mb(long bytes) => (bytes / 1024.0 / 1024).ToString("0.0", CultureInfo.InvariantCulture);
    }

    /// <summary>A reader that takes 1 KiB a second from its stream and, when the silo cuts it off or drops it,
    /// reconnects after the last id it read.</summary>
    private sealed partial class SlowWatcher(Uri silo)
    {
        public long LastId { get; private set; }

        public int CutOffs { get; private set; }

        public int Connections { get; private set; }

        public long BytesRead { get; private set; }

        public async Task RunAsync(long fromOffset, CancellationToken cancellationToken)
        {
            using var http = new HttpClient { BaseAddress = silo, Timeout = Timeout.InfiniteTimeSpan };
            LastId = fromOffset - 1;
            var buffer = new byte[ReadBytesPerSecond];
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    Connections++;
                    using var response = await http.GetAsync($"/v1/watch?fromOffset={LastId + 1}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                    await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
                    var text = new StringBuilder();
                    while (true)
                    {
                        var read = await stream.ReadAsync(buffer, cancellationToken);
                        if (read == 0)
                        {
                            break;
                        }

                        BytesRead += read;
                        text.Append(Encoding.UTF8.GetString(buffer, 0, read));

                        var complete = text.ToString();
                        var end = complete.LastIndexOf("\n\n", StringComparison.Ordinal);
                        if (end >= 0)
                        {
                            foreach (Match id in IdLine().Matches(complete[..end]))
                            {
                                LastId = long.Parse(id.Groups[1].Value, CultureInfo.InvariantCulture);
                            }

                            CutOffs += complete[..end].Contains("event: cut-off", StringComparison.Ordinal) ? 1 : 0;
                            text.Remove(0, end + 2);
                        }

                        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    // Dropped by the silo: reconnect after the last id read.
                }
            }
        }

        [GeneratedRegex(@"^id: (\d+)$", RegexOptions.Multiline)]
        private static partial Regex IdLine();
    }
}
