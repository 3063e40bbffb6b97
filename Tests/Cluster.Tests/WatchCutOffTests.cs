using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The SDK's watch across the silo's cut-off of a reader that falls too far behind, end to end.</summary>
public sealed class WatchCutOffTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Within = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task A_slow_sdk_watcher_that_is_cut_off_resumes_where_it_was_and_sees_every_offset_once_in_order()
    {
        // Small cut-off limits, and small socket buffers on both sides, so that a slow reader holds up the silo's
        // writes after a few hundred records rather than after megabytes.
        var cutOffs = new CutOffCounter();
        await using var cluster = new TestCluster("watch-cut-off", new Dictionary<string, string>
        {
            ["Meta:Watch:MaxLagRecords"] = "30",
            ["Meta:Watch:MaxLagTime"] = "00:00:00.300",
            ["Logging:LogLevel:OrleansMeta.Silo.Watch"] = "Information",
        });
        var silo = await cluster.StartInProcessSiloAsync(configureServices: services =>
        {
            services.AddSingleton<ILoggerProvider>(cutOffs);
            services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxResponseBufferSize = 4096);
            services.Configure<SocketTransportOptions>(sockets => sockets.CreateBoundListenSocket = endpoint =>
            {
                var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                socket.SendBufferSize = 4096; // Accepted connections inherit it.
                return socket;
            });
        });
        await cluster.WaitForAgreementAsync();

        using var writer = cluster.CreateClient();
        await using var broker = new TestBroker(writer, 1, "a");
        await broker.StartAsync();
        await broker.WaitUnfencedAsync();
        const int Writers = 2;
        for (var w = 0; w < Writers; w++)
        {
            await writer.CreateTopicAsync(new CreateTopicRequest($"cut-{w}", 1, 1));
        }

        // The watcher's connections: counted, with a small receive buffer.
        var connections = new CountingHandler(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 4096 };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        });
        using var watcherClient = new MetaClient(new MetaClientOptions
        {
            BootstrapUrls = [silo.Http.BaseAddress!],
            HttpMessageHandler = connections,
            RetryBaseDelay = TimeSpan.FromMilliseconds(50),
            RetryMaxDelay = TimeSpan.FromMilliseconds(500),
        });

        // A reader that is deliberately slow while the writers write, and reads at full speed after.
        var seen = new ConcurrentQueue<long>();
        var slow = 1;
        using var stop = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            await foreach (var item in watcherClient.WatchAsync(fromOffset: 1, cancellationToken: stop.Token))
            {
                Assert.True(item.IsRecord, $"unexpected {item.Kind} at {item.Offset}");
                seen.Enqueue(item.Offset);
                if (Volatile.Read(ref slow) == 1)
                {
                    await Task.Delay(40, stop.Token);
                }
            }
        });

        // Writers go on until the silo has cut the watcher off at least once (bounded, in case it never does).
        var acknowledged = new ConcurrentBag<long>();
        using var enough = new CancellationTokenSource();
        var writing = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var j = 0; !enough.IsCancellationRequested && j < 20_000; j++)
            {
                var change = new AlterConfigsRequest(new Dictionary<string, string?> { ["retention.ms"] = (1000 + j).ToString(CultureInfo.InvariantCulture) });
                acknowledged.Add((await writer.AlterTopicConfigsAsync($"cut-{w}", change)).MetadataOffset);
            }
        })).ToList();
        await Eventually.Until(() => cutOffs.Count >= 1 || writing.Any(t => t.IsFaulted), "the silo cuts the slow watcher off", Within);
        await enough.CancelAsync();
        await Task.WhenAll(writing).WaitAsync(Within);
        Volatile.Write(ref slow, 0);

        var last = acknowledged.Max();
        await Eventually.Until(() => !seen.IsEmpty && seen.Max() >= last, $"the watcher reaches offset {last}", Within);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);

        var offsets = seen.ToList();
        output.WriteLine($"{acknowledged.Count} changes, {offsets.Count} records watched, {cutOffs.Count} cut-offs, {connections.WatchRequests} watch connections");
        Assert.True(cutOffs.Count >= 1, "the silo cut the watcher off");
        Assert.True(connections.WatchRequests >= 2, "the SDK reconnected after the cut-off");

        // Every offset from the first to the last, once, in order.
        Assert.Equal(1, offsets[0]);
        for (var i = 1; i < offsets.Count; i++)
        {
            Assert.True(offsets[i] == offsets[i - 1] + 1, $"after offset {offsets[i - 1]} came {offsets[i]}");
        }

        Assert.Subset(offsets.ToHashSet(), acknowledged.ToHashSet());
    }

    /// <summary>Counts the silo's "cut off a watcher" log events (WatchSession, event 3101).</summary>
    private sealed class CutOffCounter : ILoggerProvider, ILogger
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public ILogger CreateLogger(string categoryName) => categoryName.EndsWith(".WatchSession", StringComparison.Ordinal) ? this : NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == 3101)
            {
                Interlocked.Increment(ref _count);
            }
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Counts the watch requests (each connection the SDK opens).</summary>
    private sealed class CountingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private int _watchRequests;

        public int WatchRequests => Volatile.Read(ref _watchRequests);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri?.AbsolutePath == "/v1/watch")
            {
                Interlocked.Increment(ref _watchRequests);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
