using OrleansMeta.Client;
using OrleansMeta.Cluster.Tests.Infrastructure;
using OrleansMeta.Contracts;
using OrleansMeta.Examples;
using Xunit.Abstractions;

namespace OrleansMeta.Cluster.Tests;

/// <summary>The examples (examples/Broker, Producer, Consumer) end to end on a three-silo cluster with PostgreSQL.</summary>
public sealed class ExamplesTests(ITestOutputHelper testOutput)
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Meta:Brokers:SessionTimeout"] = "00:00:03",
        ["Meta:Groups:HeartbeatInterval"] = "00:00:00.200",
        ["Meta:Groups:SessionTimeout"] = "00:00:03",
        ["Meta:Groups:SessionCheckInterval"] = "00:00:00.100",
    };

    [Fact]
    public async Task A_broker_dies_the_producer_follows_the_new_leader_and_the_group_rebalances_without_losing_a_record()
    {
        await using var cluster = new TestCluster("examples", Settings);
        for (var i = 0; i < 3; i++)
        {
            await cluster.StartInProcessSiloAsync();
        }

        await cluster.WaitForAgreementAsync();
        using var client = cluster.CreateClient();
        var text = new StringWriter();
        var output = TextWriter.Synchronized(text);
        string Log()
        {
            // The synchronized writer locks on itself for every write.
            lock (output)
            {
                return text.ToString();
            }
        }

        // A wait that fails with everything the examples said, so a failure can be read.
        async Task UntilAsync(Func<Task<bool>> condition, string what)
        {
            try
            {
                await Eventually.Until(condition, what, TimeSpan.FromSeconds(30));
            }
            catch (Xunit.Sdk.XunitException timeout)
            {
                throw new TimeoutException($"{timeout.Message}\nWhat the examples said:\n{Log()}", timeout);
            }
        }

        // Three brokers, each with its own life.
        var brokers = new Dictionary<int, (ExampleBroker Broker, CancellationTokenSource Life, Task Run)>();
        foreach (var id in new[] { 1, 2, 3 })
        {
            var life = new CancellationTokenSource();
            var broker = new ExampleBroker(client, id, output, rack: $"r{id}")
            {
                IsrInterval = TimeSpan.FromSeconds(2),
                SessionOptions = new BrokerSessionOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(300) },
            };
            brokers[id] = (broker, life, broker.RunAsync(life.Token));
        }

        await UntilAsync(async () => (await client.ListBrokersAsync()).Brokers.Count(b => b.State == "unfenced") == 3,
            "three brokers are unfenced");
        await client.CreateTopicAsync(new CreateTopicRequest("orders", 6, 3));
        await UntilAsync(() => Task.FromResult(brokers.Values.Sum(b => b.Broker.Leading.Count) == 6),
            "the brokers know, through their watches, that they lead the six partitions");

        using var stop = new CancellationTokenSource();
        var producer = new ExampleProducer(client, "orders", output) { SendInterval = TimeSpan.FromMilliseconds(100) };
        var producing = producer.RunAsync(stop.Token);
        using var leaveA = new CancellationTokenSource();
        var consumerA = new ExampleConsumer(client, "billing", "orders", "consumer-a", output) { PollInterval = TimeSpan.FromMilliseconds(300) };
        var consumerB = new ExampleConsumer(client, "billing", "orders", "consumer-b", output) { PollInterval = TimeSpan.FromMilliseconds(300) };
        var consumingA = consumerA.RunAsync(leaveA.Token);
        var consumingB = consumerB.RunAsync(stop.Token);
        await UntilAsync(() => Task.FromResult(consumerA.Owned.Count == 3 && consumerB.Owned.Count == 3 && consumerA.Read.Count > 3 && consumerB.Read.Count > 3),
            "the two consumers own and read three partitions each");

        // The leader of partition 0 dies (stops heartbeating, as a crashed process): its session expires and partition 0
        // gets a new leader, which the producer learns from its watch and sends to.
        var victim = brokers.Single(b => b.Value.Broker.Leading.Contains(("orders", 0))).Key;
        var sentBefore = producer.Sent.Count;
        await brokers[victim].Life.CancelAsync();
        await brokers[victim].Run;
        await UntilAsync(() => Task.FromResult(producer.Sent.Skip(sentBefore).Any(s => s.Partition == 0 && s.Broker != victim)),
            $"the producer sends partition 0 to a new leader after broker {victim} died");
        Assert.Contains($"leader of orders-0 moved: broker {victim} -> ", Log(), StringComparison.Ordinal);
        await UntilAsync(() => Task.FromResult(brokers.Where(b => b.Key != victim).Sum(b => b.Value.Broker.Leading.Count) == 6),
            "the surviving brokers lead all six partitions");

        // One consumer leaves: the group rebalances and the other resumes its partitions at their committed offsets.
        await leaveA.CancelAsync();
        await consumingA;
        var readBefore = consumerB.Read.Count;
        await UntilAsync(() => Task.FromResult(consumerB.Owned.Count == 6
                && Enumerable.Range(0, 6).All(p => consumerB.Read.Skip(readBefore).Count(r => r.Partition == p) >= 2)),
            "consumer-b owns and reads all six partitions");

        await stop.CancelAsync();
        await Task.WhenAll(producing, consumingB);
        foreach (var (_, (_, life, run)) in brokers)
        {
            await life.CancelAsync();
            await run;
        }

        // Nothing lost: for every partition, what the two consumers read covers every offset from 0 up to the last one
        // read, with no gap (a batch may be read twice around the rebalance).
        foreach (var partition in Enumerable.Range(0, 6))
        {
            var ranges = consumerA.Read.Concat(consumerB.Read).Where(r => r.Partition == partition).OrderBy(r => r.From).ToList();
            long covered = 0;
            foreach (var (_, from, to) in ranges)
            {
                Assert.True(from <= covered, $"orders-{partition}: offsets {covered}..{from - 1} were never read.\n{Log()}");
                covered = Math.Max(covered, to);
            }

            // Nothing committed was left unread (the last batch may have been read and its commit cut short by the stop).
            var committed = (await client.FetchOffsetsAsync("billing", ["orders"])).Offsets.Single(o => o.Partition == partition).Offset;
            Assert.True(committed <= covered && committed >= covered - 10,
                $"orders-{partition}: committed {committed}, read up to {covered}.\n{Log()}");
        }

        Assert.Contains("ISR of orders-", Log(), StringComparison.Ordinal);
        testOutput.WriteLine(Log());
    }
}
