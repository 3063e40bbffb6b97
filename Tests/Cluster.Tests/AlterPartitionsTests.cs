using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.Runtime.Messaging;
using OrleansMeta.Silo.Api;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Kafka's AlterPartition as brokers send it, many partitions per request (<c>POST /v1/brokers/{id}/alter-partition</c>),
/// on three silos with PostgreSQL: each partition gets its own outcome in the order asked, the request crosses to
/// another silo once per owning silo (never once per partition), a stale broker epoch refuses the whole request, bad
/// input is a 400 that names the field and changes nothing, and a silo killed mid-stream loses no acknowledged change.
/// </summary>
public sealed class AlterPartitionsTests
{
    [Fact]
    public async Task A_broker_changes_the_isr_of_many_partitions_in_one_request_each_with_its_own_outcome()
    {
        await using var setup = await MetaSetup.StartAsync("alter-partitions");
        var topics = new[]
        {
            (await setup.Client.CreateTopicAsync(new CreateTopicRequest("batched-a", 6, 3))).Topic,
            (await setup.Client.CreateTopicAsync(new CreateTopicRequest("batched-b", 6, 3))).Topic,
        };
        var broker = setup.Brokers.Single(b => b.Id == topics[0].Partitions[0].Leader);
        var led = topics.SelectMany(t => t.Partitions.Where(p => p.Leader == broker.Id).Select(p => (Topic: t.Name, Partition: p))).ToList();
        var notLed = topics[1].Partitions.First(p => p.Leader != broker.Id);
        Assert.True(led.Count >= 3, $"broker {broker.Id} leads {led.Count} of 12 partitions");

        // The first led partition with a stale partition epoch, the rest shrunk by one follower; one partition led by
        // another broker, one beyond the topic's partitions and a topic that does not exist.
        var stale = led[0];
        var request = new AlterPartitionsRequest(broker.Epoch,
        [
            new AlterPartitionTopic("batched-a",
            [
                .. led.Where(l => l.Topic == "batched-a").Select(l => l == stale
                    ? new AlterPartitionItem(l.Partition.Partition, l.Partition.LeaderEpoch, l.Partition.PartitionEpoch + 7, Shrunk(l.Partition))
                    : new AlterPartitionItem(l.Partition.Partition, l.Partition.LeaderEpoch, l.Partition.PartitionEpoch, Shrunk(l.Partition))),
                new AlterPartitionItem(99, 0, 0, [broker.Id]),
            ]),
            new AlterPartitionTopic("batched-b",
            [
                .. led.Where(l => l.Topic == "batched-b").Select(l => new AlterPartitionItem(l.Partition.Partition, l.Partition.LeaderEpoch, l.Partition.PartitionEpoch, Shrunk(l.Partition))),
                new AlterPartitionItem(notLed.Partition, notLed.LeaderEpoch, notLed.PartitionEpoch, [broker.Id]),
            ]),
            new AlterPartitionTopic("never-made", [new AlterPartitionItem(0, 0, 0, [broker.Id])]),
        ]);

        var forwardedBefore = (Forwarded(setup, "partition"), Forwarded(setup, "partition-batch"));
        var answer = await setup.Client.AlterPartitionsAsync(broker.Id, request);

        // One result per partition, in the order asked.
        Assert.Equal(request.Topics.Select(t => t.Topic), answer.Topics.Select(t => t.Topic));
        for (var t = 0; t < request.Topics.Count; t++)
        {
            Assert.Equal(request.Topics[t].Partitions.Select(p => p.Partition), answer.Topics[t].Partitions.Select(p => p.Partition));
        }

        Assert.Equal(topics[0].TopicId, answer.Topics[0].TopicId);
        Assert.Null(answer.Topics[2].TopicId);
        var results = answer.Topics.SelectMany(t => t.Partitions.Select(p => (t.Topic, Result: p))).ToList();
        Assert.Equal(ErrorCodes.InvalidUpdateVersion, Result("batched-a", stale.Partition.Partition).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Result("batched-a", 99).ErrorCode);
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, Result("batched-b", notLed.Partition).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Result("never-made", 0).ErrorCode);
        foreach (var (topic, partition) in led.Skip(1))
        {
            var result = Result(topic, partition.Partition);
            Assert.Null(result.ErrorCode);
            Assert.Equal(Shrunk(partition), result.State!.Isr);
            Assert.Equal(partition.PartitionEpoch + 1, result.State.PartitionEpoch);
        }

        // The silo the SDK sent it to handed each other owning silo its share in one call: no partition call was
        // forwarded on its own.
        var forwardedAfter = (Forwarded(setup, "partition"), Forwarded(setup, "partition-batch"));
        Assert.Equal(forwardedBefore.Item1, forwardedAfter.Item1);
        Assert.InRange(forwardedAfter.Item2 - forwardedBefore.Item2, 0, 2);

        // What was answered is what every silo reads at the answer's offset; refused partitions did not change.
        foreach (var silo in setup.Silos)
        {
            var metadata = await silo.Http.GetFromJsonAsync<MetadataResponse>($"/v1/metadata?topics=batched-a,batched-b&minOffset={answer.MetadataOffset}");
            foreach (var (topic, partition) in led)
            {
                var read = metadata!.Topics.Single(t => t.Name == topic).Partitions.Single(p => p.Partition == partition.Partition);
                Assert.Equal(partition == stale.Partition ? partition.Isr : Shrunk(partition), read.Isr);
            }

            Assert.Equal(notLed.PartitionEpoch, metadata!.Topics.Single(t => t.Name == "batched-b").Partitions.Single(p => p.Partition == notLed.Partition).PartitionEpoch);
        }

        AlterPartitionResult Result(string topic, int partition) => results.Single(r => r.Topic == topic && r.Result.Partition == partition).Result;
    }

    [Fact]
    public async Task A_stale_broker_epoch_or_a_malformed_request_is_refused_whole_and_changes_nothing()
    {
        await using var setup = await MetaSetup.StartAsync("alter-partitions-refused", settings: MetaSetup.SteadyBrokerSessions);
        var created = await setup.Client.CreateTopicAsync(new CreateTopicRequest("refused", 3, 3));
        var partition = created.Topic.Partitions[0];
        var broker = setup.Brokers.Single(b => b.Id == partition.Leader);
        var http = setup.Silos[1].Http;
        var head = (await setup.Client.GetMetadataAsync(minOffset: created.MetadataOffset)).MetadataOffset;
        var shrink = new AlterPartitionItem(0, partition.LeaderEpoch, partition.PartitionEpoch, [.. partition.Isr.Take(2)]);

        // Kafka's first check is the broker's epoch, for the whole request.
        var stale = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.AlterPartitionsAsync(broker.Id,
            new AlterPartitionsRequest(broker.Epoch - 1, [new AlterPartitionTopic("refused", [shrink])])));
        Assert.Equal((ErrorCodes.StaleBrokerEpoch, 409), (stale.Code, stale.StatusCode));
        var unregistered = await Assert.ThrowsAsync<MetaApiException>(() => setup.Client.AlterPartitionsAsync(77,
            new AlterPartitionsRequest(broker.Epoch, [new AlterPartitionTopic("refused", [shrink])])));
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, unregistered.Code);

        var item = $"{{\"partition\":0,\"leaderEpoch\":{partition.LeaderEpoch},\"partitionEpoch\":{partition.PartitionEpoch},\"newIsr\":[{broker.Id}]}}";
        var tooMany = string.Join(",", Enumerable.Range(0, AlterPartitionsEndpoint.MaxPartitions + 1)
            .Select(i => $"{{\"partition\":{i},\"leaderEpoch\":0,\"partitionEpoch\":0,\"newIsr\":[{broker.Id}]}}"));
        (string Topics, string Field)[] malformed =
        [
            ("[]", "$.topics"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[]}}]", "$.topics[0].partitions"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{item}]}},{{\"topic\":\"refused\",\"partitions\":[{item}]}}]", "$.topics[1].topic"),
            ($"[{{\"topic\":\"bad name\",\"partitions\":[{item}]}}]", "$.topics[0].topic"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{item},{item}]}}]", "$.topics[0].partitions[1].partition"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{item.Replace("\"partition\":0", "\"partition\":-1", StringComparison.Ordinal)}]}}]", "$.topics[0].partitions[0].partition"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{item.Replace($"[{broker.Id}]", $"[{broker.Id},{broker.Id}]", StringComparison.Ordinal)}]}}]", "$.topics[0].partitions[0].newIsr"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{item.Replace($"[{broker.Id}]", "[]", StringComparison.Ordinal)}]}}]", "$.topics[0].partitions[0].newIsr"),
            ($"[{{\"topic\":\"refused\",\"partitions\":[{tooMany}]}}]", $"at most {AlterPartitionsEndpoint.MaxPartitions}"),
        ];
        foreach (var (topics, field) in malformed)
        {
            using var content = new StringContent($"{{\"brokerEpoch\":{broker.Epoch},\"topics\":{topics}}}", Encoding.UTF8, "application/json");
            using var response = await http.PostAsync($"/v1/brokers/{broker.Id}/alter-partition", content);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest && text.Contains(field, StringComparison.Ordinal),
                $"{topics[..Math.Min(120, topics.Length)]}: {(int)response.StatusCode} {text[..Math.Min(400, text.Length)]}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        await LogHead.AssertUnmovedAsync(http, head);
    }

    [Fact]
    public async Task A_silo_killed_mid_stream_loses_no_acknowledged_isr_change()
    {
        await using var setup = await MetaSetup.StartAsync("alter-partitions-kill");
        foreach (var name in new[] { "kill-a", "kill-b", "kill-c" })
        {
            await setup.Client.CreateTopicAsync(new CreateTopicRequest(name, 6, 3));
        }

        // The client talks to the first silo only; the third, which owns some of the partitions, is killed mid-stream.
        using var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [setup.Silos[0].Http.BaseAddress!] });
        var broker = setup.Brokers[0];
        var acknowledged = new Dictionary<(string, int), PartitionInfo>();
        var offset = 0L;
        var (rounds, unavailable) = (0, 0);
        var victim = setup.Silos[2];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var afterKill = 0;
        while (afterKill < 5 && DateTime.UtcNow < deadline)
        {
            // Each round flips the ISR of every partition the broker leads, from the state read at the last offset.
            var metadata = await client.GetMetadataAsync(["kill-a", "kill-b", "kill-c"], offset);
            var request = new AlterPartitionsRequest(broker.Epoch, [.. metadata.Topics.Select(t => new AlterPartitionTopic(t.Name,
                [.. t.Partitions.Where(p => p.Leader == broker.Id).Select(p => new AlterPartitionItem(p.Partition, p.LeaderEpoch, p.PartitionEpoch,
                    p.Isr.Count == p.Replicas.Count ? Shrunk(p) : p.Replicas))])).Where(t => t.Partitions.Count > 0)]);
            if (rounds == 3)
            {
                await victim.KillAsync();
            }

            AlterPartitionsResponse answer;
            try
            {
                answer = await client.AlterPartitionsAsync(broker.Id, request);
            }
            catch (MetaApiException e) when (e.IsRetryable || e.OutcomeUnknown || e.Code == ErrorCodes.StaleBrokerEpoch)
            {
                continue; // the silo answering could not judge (its view was changing) or the broker registered again: read and retry
            }

            rounds++;
            var allApplied = true;
            foreach (var topic in answer.Topics)
            {
                foreach (var result in topic.Partitions)
                {
                    if (result.State is { } state)
                    {
                        acknowledged[(topic.Topic, result.Partition)] = state;
                    }
                    else
                    {
                        allApplied = false;
                        unavailable += result.ErrorCode == ErrorCodes.Unavailable ? 1 : 0;
                        Assert.True(result.Retryable || result.ErrorCode is ErrorCodes.InvalidUpdateVersion or ErrorCodes.FencedLeaderEpoch
                            or ErrorCodes.NotLeaderOrFollower or ErrorCodes.StaleBrokerEpoch, $"{topic.Topic}-{result.Partition}: {result.ErrorCode} {result.Message}");
                    }
                }
            }

            offset = Math.Max(offset, answer.MetadataOffset);
            afterKill += victim.IsRunning || !allApplied ? 0 : 1;
        }

        Assert.True(afterKill >= 5, $"after the kill, rounds where every partition was applied: {afterKill} of {rounds} rounds ({unavailable} partitions unavailable)");

        // Every acknowledged change is what is read, or a later change of the same partition superseded it.
        var final = await client.GetMetadataAsync(["kill-a", "kill-b", "kill-c"], offset);
        foreach (var ((topic, partition), state) in acknowledged)
        {
            var read = final.Topics.Single(t => t.Name == topic).Partitions.Single(p => p.Partition == partition);
            Assert.True(read.PartitionEpoch > state.PartitionEpoch || (read.PartitionEpoch == state.PartitionEpoch && read.Isr.SequenceEqual(state.Isr)),
                $"{topic}-{partition}: acknowledged epoch {state.PartitionEpoch} ISR [{string.Join(",", state.Isr)}], read epoch {read.PartitionEpoch} ISR [{string.Join(",", read.Isr)}]");
        }
    }

    /// <summary>The ISR without the assignment's last follower.</summary>
    private static IReadOnlyList<int> Shrunk(PartitionInfo partition)
        => [.. partition.Isr.Where(b => b != partition.Replicas.Last(r => r != partition.Leader))];

    private static long Forwarded(MetaSetup setup, string grainType)
        => setup.Silos.Where(s => s.IsRunning).Sum(s => s.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls(grainType));
}
