using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// The SDK's monotonic reads on two silos with PostgreSQL: a client writes a topic whose grain one silo owns, then reads
/// it through the other silo, whose image is held back (a tailer that lags, as every silo's does for a few
/// milliseconds). The caller passes no <c>minOffset</c>.
/// </summary>
public sealed class MonotonicReadsTests
{
    [Fact]
    public async Task A_read_on_a_lagging_silo_waits_for_the_clients_own_write_although_the_caller_passes_no_min_offset()
    {
        await using var setup = await LaggingSetup.StartAsync("monotonic-reads");
        using var client = setup.Client(new MetaClientOptions());

        var created = await client.CreateTopicAsync(new CreateTopicRequest(setup.Topic, 1, 1));
        Assert.Equal(created.MetadataOffset, client.SeenMetadataOffset);
        Assert.True(setup.Lagging.Log.HeldAt < created.MetadataOffset, "the lagging silo's image does not hold the write");

        var read = client.DescribeTopicAsync(setup.Topic);
        // The lagging silo stays behind for a moment longer; it must not answer from its older image meanwhile.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.False(read.IsCompleted, "the lagging silo answered before its image held the client's write");
        setup.Lagging.Log.Release();

        var described = await read;
        Assert.Equal(created.Topic.TopicId, described.Topic.TopicId);
        Assert.True(described.MetadataOffset >= created.MetadataOffset);
        Assert.Equal($"/v1/topics/{setup.Topic}?minOffset={created.MetadataOffset}", Assert.Single(setup.Reads).PathAndQuery);
    }

    [Fact]
    public async Task With_monotonic_reads_off_the_read_carries_no_min_offset_and_the_lagging_silo_answers_from_its_older_image()
    {
        await using var setup = await LaggingSetup.StartAsync("monotonic-reads-off");
        using var client = setup.Client(new MetaClientOptions { MonotonicReads = false });

        var created = await client.CreateTopicAsync(new CreateTopicRequest(setup.Topic, 1, 1));
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => client.DescribeTopicAsync(setup.Topic));

        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, stale.Code);
        Assert.Equal($"/v1/topics/{setup.Topic}", Assert.Single(setup.Reads).PathAndQuery);
        Assert.Equal(created.MetadataOffset, client.SeenMetadataOffset); // tracked all the same
    }

    /// <summary>Two silos and an unfenced broker; <see cref="Topic"/> is a name whose grain <see cref="Writer"/> owns,
    /// and <see cref="Lagging"/>'s image is held at the log head.</summary>
    private sealed class LaggingSetup : IAsyncDisposable
    {
        private readonly TestCluster _cluster;
        private readonly RecordingHandler _recording = new();
        private readonly List<TestBroker> _brokers;
        private readonly MetaClient _admin;

        private LaggingSetup(TestCluster cluster, HookedSilo writer, HookedSilo lagging, MetaClient admin, List<TestBroker> brokers, string topic)
            => (_cluster, Writer, Lagging, _admin, _brokers, Topic) = (cluster, writer, lagging, admin, brokers, topic);

        public HookedSilo Writer { get; }

        public HookedSilo Lagging { get; }

        public string Topic { get; }

        /// <summary>The reads (GETs) the test's client sent.</summary>
        public IEnumerable<Uri> Reads => _recording.Sent.Where(r => r.Method == HttpMethod.Get).Select(r => r.Url);

        public static async Task<LaggingSetup> StartAsync(string name)
        {
            var cluster = new TestCluster(name);
            var writer = await HookedSilo.StartAsync(cluster, "silo-0");
            var lagging = await HookedSilo.StartAsync(cluster, "silo-1");
            await Eventually.Until(async () =>
            {
                var views = await Task.WhenAll(writer.GetClusterAsync(), lagging.GetClusterAsync());
                return views.All(v => v.Silos.Count(s => s.Status == "active") == 2);
            }, "the silos see each other active", TimeSpan.FromSeconds(60));
            var admin = new MetaClient(new MetaClientOptions { BootstrapUrls = [writer.Http.BaseAddress!], RequestTimeout = TimeSpan.FromSeconds(20) });
            var brokers = await TestBroker.StartUnfencedAsync(admin, 1);

            var locator = writer.Services.GetRequiredService<GrainLocator>();
            var topic = Enumerable.Range(0, 64).Select(i => $"seen-{i}")
                .First(t => locator.Locate<ITopicGrain>(TopicKeys.For(t)).Owner!.Address.Endpoint == writer.SiloEndpoint);

            // From here on the lagging silo's image stands still.
            var head = await lagging.Services.GetRequiredService<IMetadataLog>().GetHeadAsync(CancellationToken.None);
            await lagging.Services.GetRequiredService<MetadataImageService>().WaitForAsync(head, TimeSpan.FromSeconds(10));
            lagging.Log.HoldAt(head);
            return new LaggingSetup(cluster, writer, lagging, admin, brokers, topic);
        }

        /// <summary>A client whose only bootstrap silo is the lagging one: its reads land there, while its writes reach
        /// the owning silo (forwarded by the lagging silo, then sent straight there).</summary>
        public MetaClient Client(MetaClientOptions options)
        {
            options.BootstrapUrls = [Lagging.Http.BaseAddress!];
            options.RequestTimeout = TimeSpan.FromSeconds(20);
            options.HttpMessageHandler = _recording;
            return new MetaClient(options);
        }

        public async ValueTask DisposeAsync()
        {
            Lagging.Log.Release();
            foreach (var broker in _brokers)
            {
                await broker.DisposeAsync();
            }

            _admin.Dispose();
            await Lagging.DisposeAsync();
            await Writer.DisposeAsync();
            await _cluster.DisposeAsync();
            _recording.Dispose();
        }
    }

    /// <summary>Records every request a client sends.</summary>
    private sealed class RecordingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        public System.Collections.Concurrent.ConcurrentQueue<(HttpMethod Method, Uri Url)> Sent { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Sent.Enqueue((request.Method, request.RequestUri!));
            return base.SendAsync(request, cancellationToken);
        }
    }
}
