using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>Canned wire records and clients for tests.</summary>
internal static class Samples
{
    public static readonly Guid TopicId = Guid.Parse("6f1c1c55-5f5e-4c3b-9a8e-0d5c2b0b7a01");

    public static readonly BrokerInfo Broker = new(1, Guid.Parse("0b7d9c1e-7a54-4c61-8f0e-5d3a9e2c4b11"), 42,
        [new BrokerListener("PLAINTEXT", "broker-1", 9092)], "rack-a", "unfenced");

    public static PartitionInfo Partition(int index, int leader, int leaderEpoch) =>
        new(index, leader, leaderEpoch, PartitionEpoch: leaderEpoch, Replicas: [1, 2, 3], Isr: [1, 2, 3]);

    public static TopicDescription Topic(string name, Guid topicId, params PartitionInfo[] partitions) =>
        new(name, topicId, 3, new Dictionary<string, string> { ["retention.ms"] = "60000" }, partitions);

    public static MetadataResponse Metadata(long offset, params TopicMetadata[] topics) =>
        new([Broker], topics, new ControllerInfo("silo-0", 7), offset);

    public static TopicMetadata TopicMetadata(string name, Guid topicId, params PartitionInfo[] partitions) =>
        new(name, topicId, null, partitions);

    /// <summary>A client with near-zero backoff, so retries do not slow tests down.</summary>
    public static MetaClient Client(params Uri[] silos) => Client(o => { }, silos);

    public static MetaClient Client(Action<MetaClientOptions> configure, params Uri[] silos)
    {
        var options = new MetaClientOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(1), RetryMaxDelay = TimeSpan.FromMilliseconds(5) };
        foreach (var silo in silos)
        {
            options.BootstrapUrls.Add(silo);
        }

        configure(options);
        return new MetaClient(options);
    }
}
