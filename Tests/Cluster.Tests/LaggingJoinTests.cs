using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// A silo whose metadata image lags (a long log to replay, a slow database) must not own grains until it has caught
/// up with the log as it was when it started: its grains would otherwise decide on old metadata.
/// </summary>
public sealed class LaggingJoinTests
{
    [Fact]
    public async Task A_silo_turns_active_only_once_its_image_has_caught_up_with_the_head_it_read_at_start()
    {
        await using var cluster = new TestCluster("lagging-join");
        var first = await cluster.StartInProcessSiloAsync();
        var client = cluster.CreateClient();
        long head = 0;
        for (var id = 0; id < 20; id++)
        {
            var registration = await client.RegisterBrokerAsync(id, new BrokerRegistrationRequest(
                Guid.NewGuid(), [new BrokerListener("PLAINTEXT", $"broker-{id}.test", 9092)], null));
            head = Math.Max(head, registration.MetadataOffset);
        }

        // The second silo reads the log one record at a time, slowly: its replay takes seconds.
        SlowLog? slow = null;
        var starting = cluster.StartInProcessSiloAsync(configureServices: services => services.AddSingleton<IMetadataLog>(provider =>
            slow = new SlowLog(provider.GetRequiredService<PostgresMetadataLog>(), TimeSpan.FromMilliseconds(150))));

        // Until it is Active in the first silo's view it owns nothing; once it is, its image must hold the head.
        var sawJoining = false;
        while (!starting.IsCompleted)
        {
            var view = await first.GetClusterAsync();
            var joining = view.Silos.Where(s => s.Name == "silo-1" && s.Status != "dead").ToList();
            if (joining.Any(s => s.Status == "joining"))
            {
                sawJoining = true;
            }

            if (joining.Any(s => s.Status == "active"))
            {
                Assert.True(slow!.Delivered >= head, $"silo-1 turned active with its image at offset {slow.Delivered}, below the head {head} it started with");
            }

            await Task.Delay(50);
        }

        var second = await starting;
        Assert.True(sawJoining, "the lagging silo was seen waiting as Joining");
        Assert.True(second.Services.GetRequiredService<MetadataImageService>().Current.Offset >= head);
    }

    /// <summary>Hands out at most one new record per read, each after a delay.</summary>
    private sealed class SlowLog(IMetadataLog inner, TimeSpan delay) : IMetadataLog
    {
        private long _delivered;

        public long Delivered => Interlocked.Read(ref _delivered);

        public async Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            // Two at most: the tailer re-reads the record it applied last (to check the log still holds it) and gets
            // one new record per read.
            var records = await inner.ReadAsync(afterOffset, Math.Min(maxCount, 2), cancellationToken);
            if (records.Count > 0)
            {
                Interlocked.Exchange(ref _delivered, records[^1].Offset);
            }

            return records;
        }

        public Task<long> GetHeadAsync(CancellationToken cancellationToken) => inner.GetHeadAsync(cancellationToken);

        public Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken)
            => inner.WaitForAppendAsync(afterOffset, maxWait, cancellationToken);
    }
}
