using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>Every public async operation takes the token last, positionally too, and passes it on.</summary>
public sealed class CancellationTests
{
    public static TheoryData<string> Operations() =>
    [
        "ListBrokers", "ListTopics", "DescribeTopic", "GetMetadata", "GetMetadataOfTopics", "GetCluster", "GetLeader",
        "RegisterBroker", "Heartbeat", "CreateTopic", "DeleteTopic", "AddPartitions", "AlterConfigs", "AlterPartition", "Elect",
        "ListBrokersAt", "ListTopicsAt", "DescribeTopicAt", "GetMetadataAt", "GetMetadataWithFenced", "DescribeConfigs", "UnregisterBroker",
    ];

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task A_token_given_positionally_is_passed_on(string operation)
    {
        await using var silo = await FakeSilo.StartAsync(_ => { });
        using var concrete = Samples.Client(silo.Url);
        IMetaClient client = concrete;
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var ct = cancelled.Token;

        Task call = operation switch
        {
            "ListBrokers" => client.ListBrokersAsync(ct),
            "ListTopics" => client.ListTopicsAsync(ct),
            "DescribeTopic" => client.DescribeTopicAsync("t", ct),
            "GetMetadata" => client.GetMetadataAsync(ct),
            "GetMetadataOfTopics" => client.GetMetadataAsync(["t"], ct),
            "GetCluster" => client.GetClusterAsync(ct),
            "GetLeader" => client.GetLeaderAsync("t", 0, ct).AsTask(),
            "RegisterBroker" => client.RegisterBrokerAsync(1, new BrokerRegistrationRequest(Guid.NewGuid(), [new("PLAINTEXT", "b", 9092)]), ct),
            "Heartbeat" => client.SendBrokerHeartbeatAsync(1, new BrokerHeartbeatRequest(1, 0), ct),
            "CreateTopic" => client.CreateTopicAsync(new CreateTopicRequest("t"), ct),
            "DeleteTopic" => client.DeleteTopicAsync("t", ct),
            "AddPartitions" => client.AddPartitionsAsync("t", new AddPartitionsRequest(2), ct),
            "AlterConfigs" => client.AlterTopicConfigsAsync("t", new AlterConfigsRequest(new Dictionary<string, string?>()), ct),
            "AlterPartition" => client.AlterPartitionAsync("t", 0, new AlterPartitionRequest(1, 1, 1, 1, [1]), ct),
            "Elect" => client.ElectLeadersAsync(new ElectionRequest("preferred"), ct),
            "ListBrokersAt" => concrete.ListBrokersAsync(5, ct),
            "ListTopicsAt" => concrete.ListTopicsAsync(5, ct),
            "DescribeTopicAt" => concrete.DescribeTopicAsync("t", 5, ct),
            "GetMetadataAt" => concrete.GetMetadataAsync(["t"], 5, ct),
            "GetMetadataWithFenced" => client.GetMetadataAsync(["t"], 5, true, ct),
            "DescribeConfigs" => client.DescribeTopicConfigsAsync("t", ct),
            "UnregisterBroker" => client.UnregisterBrokerAsync(1, ct),
            _ => throw new ArgumentOutOfRangeException(nameof(operation)),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(0, silo.Hits);
    }
}
