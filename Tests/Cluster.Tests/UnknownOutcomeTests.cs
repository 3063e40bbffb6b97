using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Runtime.Persistence.PostgreSql;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// A write whose commit happened but whose answer was lost (a timeout, a connection dropped during COMMIT) must not
/// leave a grain answering from its old memory: the partition's leader would be refused forever.
/// </summary>
public sealed class UnknownOutcomeTests
{
    [Fact]
    public async Task AlterPartition_whose_commit_answer_was_lost_is_seen_as_committed_by_the_next_request()
    {
        var storage = new LoseNextAnswer();
        await using var cluster = new TestCluster("lost-answer");
        await cluster.StartInProcessSiloAsync(configureServices: services => services.AddSingleton<IGrainStorage>(provider =>
            storage.Wrap(provider.GetRequiredService<PostgresGrainStorage>())));
        using var client = cluster.CreateClient();
        var brokers = await TestBroker.StartUnfencedAsync(client, 1, 2, 3);

        var created = await client.CreateTopicAsync(new CreateTopicRequest("lost", 1, 3));
        var partition = created.Topic.Partitions[0];
        var leader = brokers.Single(b => b.Id == partition.Leader);
        var smaller = partition.Isr.Where(b => b != partition.Replicas[2]).ToList();

        // The shrink commits, but its answer never arrives. (One attempt: the client is not to retry it for us.)
        using var once = new MetaClient(new MetaClientOptions { BootstrapUrls = [cluster.Silos[0].Http.BaseAddress!], MaxAttempts = 1 });
        storage.Arm("partition");
        var lost = await Assert.ThrowsAsync<MetaApiException>(() => once.AlterPartitionAsync("lost", 0,
            new AlterPartitionRequest(leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch, smaller)));
        Assert.True(lost.IsRetryable, $"{lost.StatusCode} {lost.Code}: {lost.Message}");
        Assert.Equal(503, lost.StatusCode);

        // Sent again, it is refused as stale: the grain reloaded and knows the first one committed.
        var again = await Assert.ThrowsAsync<MetaApiException>(() => once.AlterPartitionAsync("lost", 0,
            new AlterPartitionRequest(leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch, smaller)));
        Assert.Equal(ErrorCodes.InvalidUpdateVersion, again.Code);

        // The leader learns the committed state and builds on it: the grain must not refuse it from stale memory.
        // (Nobody heard the lost write's offset, so wait for the image to apply its record rather than reading at the
        // image's own offset, which may not include it yet.)
        PartitionInfo? now = null;
        await Eventually.Until(async () =>
        {
            now = (await client.DescribeTopicAsync("lost")).Topic.Partitions[0];
            return now.PartitionEpoch > partition.PartitionEpoch;
        }, "the image shows the committed shrink");
        Assert.Equal(smaller, now!.Isr);
        Assert.Equal(partition.PartitionEpoch + 1, now.PartitionEpoch);
        var expanded = await client.AlterPartitionAsync("lost", 0,
            new AlterPartitionRequest(leader.Id, leader.Epoch, partition.LeaderEpoch, partition.PartitionEpoch + 1, partition.Isr));
        Assert.Equal(partition.PartitionEpoch + 2, expanded.Partition.PartitionEpoch);

        foreach (var broker in brokers)
        {
            await broker.DisposeAsync();
        }
    }

    /// <summary>Passes writes on, but throws away the answer of the next write to a grain of one type.</summary>
    private sealed class LoseNextAnswer
    {
        private volatile string? _armedFor;

        public void Arm(string grainType) => _armedFor = grainType;

        public IGrainStorage Wrap(IGrainStorage inner) => new Storage(this, inner);

        private sealed class Storage(LoseNextAnswer owner, IGrainStorage inner) : IGrainStorage
        {
            public Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
                => inner.ReadAsync(grainId, stateName, cancellationToken);

            public async Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken)
            {
                var result = await inner.WriteAsync(grainId, stateName, write, cancellationToken);
                return grainId.Type == owner._armedFor && Interlocked.Exchange(ref owner._armedFor, null) is not null
                    ? throw new Npgsql.NpgsqlException("Exception while reading from stream (the connection dropped after COMMIT was sent).")
                    : result;
            }
        }
    }
}
