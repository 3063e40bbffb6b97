using System.Collections.Concurrent;
using System.Globalization;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The watch through the SDK while the silo it reads from is killed (kill -9) mid-stream.</summary>
public sealed class WatchFailoverTests(ITestOutputHelper output)
{
    private const int Writers = 4;
    private const int ChangesPerWriter = 1000;
    private static readonly TimeSpan Within = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task A_watcher_sees_every_offset_exactly_once_in_order_while_four_writers_change_topics_and_its_silo_is_killed()
    {
        await using var cluster = new TestCluster("watch-kill");
        var silos = new List<ProcessSilo>();
        for (var i = 0; i < 3; i++)
        {
            silos.Add(await cluster.StartProcessSiloAsync());
        }

        await cluster.WaitForAgreementAsync();
        var victim = silos[0];
        var survivors = silos.Skip(1).Select(s => s.Http.BaseAddress!).ToList();

        // Writers talk to the survivors only, so the kill costs them no write of unknown outcome on the victim's
        // connection; their grains may still live on the victim, and such changes are sent again (harmless here).
        using var writer = new MetaClient(new MetaClientOptions { BootstrapUrls = survivors, RequestTimeout = TimeSpan.FromSeconds(10), MaxAttempts = 10 });
        await using var broker = new TestBroker(writer, 1, "a");
        await broker.StartAsync();
        await broker.WaitUnfencedAsync();
        for (var w = 0; w < Writers; w++)
        {
            await writer.CreateTopicAsync(new CreateTopicRequest($"watched-{w}", 1, 1));
        }

        // The watcher starts on the victim (the first bootstrap URL) from the very first offset.
        using var watcherClient = new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [.. silos.Select(s => s.Http.BaseAddress!)],
            RetryBaseDelay = TimeSpan.FromMilliseconds(50),
            RetryMaxDelay = TimeSpan.FromMilliseconds(500),
            WatchIdleTimeout = TimeSpan.FromSeconds(20),
        });
        var seen = new ConcurrentQueue<long>();
        using var stop = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            await foreach (var item in watcherClient.WatchAsync(fromOffset: 1, cancellationToken: stop.Token))
            {
                Assert.True(item.IsRecord || item.Kind == WatchEventKinds.Progress, $"unexpected {item.Kind} at {item.Offset}");
                if (item.IsRecord)
                {
                    seen.Enqueue(item.Offset);
                }
            }
        });

        var acknowledged = new ConcurrentBag<long>();
        var resent = 0;
        var writing = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var j = 0; j < ChangesPerWriter; j++)
            {
                var change = new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = (1000 + j).ToString(CultureInfo.InvariantCulture) });
                while (true)
                {
                    try
                    {
                        acknowledged.Add((await writer.AlterTopicConfigsAsync($"watched-{w}", change)).MetadataOffset);
                        break;
                    }
                    catch (MetaApiException e) when (e.IsRetryable)
                    {
                        Interlocked.Increment(ref resent);
                    }
                }
            }
        })).ToList();

        // Mid-stream: once the watcher has seen a quarter of the changes, kill the silo it reads from.
        await Eventually.Until(() => acknowledged.Count >= Writers * ChangesPerWriter / 4 && seen.Count >= Writers * ChangesPerWriter / 4,
            "the watcher is receiving the writers' changes", Within);
        var seenAtKill = seen.Count;
        victim.Kill();
        output.WriteLine($"killed {victim} after the watcher saw {seenAtKill} records");

        await Task.WhenAll(writing).WaitAsync(Within);
        var last = acknowledged.Max();
        await Eventually.Until(() => !seen.IsEmpty && seen.Max() >= last, $"the watcher reaches offset {last}", Within);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);

        var offsets = seen.ToList();
        output.WriteLine($"{acknowledged.Count} changes acknowledged ({resent} resent after retryable errors), {offsets.Count} records watched, last {offsets[^1]}");
        Assert.Equal(Writers * ChangesPerWriter, acknowledged.Count);
        Assert.True(seenAtKill < offsets.Count, "records arrived after the kill");

        // Every offset from the first to the last, once, in order: contiguous, so nothing was skipped or repeated.
        Assert.Equal(1, offsets[0]);
        for (var i = 1; i < offsets.Count; i++)
        {
            Assert.True(offsets[i] == offsets[i - 1] + 1, $"after offset {offsets[i - 1]} came {offsets[i]}");
        }

        Assert.Subset(offsets.ToHashSet(), acknowledged.ToHashSet());
    }
}
