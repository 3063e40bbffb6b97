using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OrleansMeta.Contracts;
using OrleansMeta.Runtime.Messaging;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// Config changes of many topics in one request (<c>POST /v1/configs</c>, Kafka's IncrementalAlterConfigs) on three
/// silos with PostgreSQL: each topic gets its own outcome in the order asked, no topic is forwarded on its own,
/// validateOnly writes nothing, and a malformed request is a 400 naming the field that changes nothing.
/// </summary>
public sealed class AlterTopicsConfigsTests
{
    [Fact]
    public async Task Many_topics_change_their_configs_in_one_request_each_with_its_own_outcome()
    {
        await using var setup = await MetaSetup.StartAsync("alter-configs-batched", settings: MetaSetup.SteadyBrokerSessions);
        var names = Enumerable.Range(0, 6).Select(i => $"configured-{i}").ToList();
        var created = 0L;
        foreach (var name in names.Append("configured-bad-value"))
        {
            created = (await setup.Client.CreateTopicAsync(new CreateTopicRequest(name, 1, 3))).MetadataOffset;
        }

        static IReadOnlyDictionary<string, string?> Retention(string value) => new Dictionary<string, string?> { ["retention.ms"] = value };
        var request = new AlterTopicsConfigsRequest(
        [
            .. names.Select((name, i) => new TopicConfigChanges(name, Retention($"{(i + 1) * 60_000}"))),
            new TopicConfigChanges("never-made", Retention("60000")),
            new TopicConfigChanges("configured-bad-value", Retention("soon")),
        ]);

        // validateOnly: every outcome as if done, nothing written.
        var head = (await setup.Client.GetMetadataAsync(minOffset: created)).MetadataOffset;
        var validated = await setup.Client.AlterTopicConfigsAsync(request with { ValidateOnly = true });
        Assert.Equal([.. Enumerable.Repeat<string?>(null, 6), ErrorCodes.UnknownTopicOrPartition, ErrorCodes.InvalidConfig], validated.Topics.Select(t => t.ErrorCode));
        await LogHead.AssertUnmovedAsync(setup.Silos[0].Http, head);

        var forwardedBefore = (Forwarded(setup, "topic"), Forwarded(setup, "topic-batch"));
        var answer = await setup.Client.AlterTopicConfigsAsync(request);
        Assert.Equal(request.Topics.Select(t => t.Topic), answer.Topics.Select(t => t.Topic));
        Assert.All(answer.Topics.Take(6), t => Assert.True(t.ErrorCode is null && t.TopicId is not null, $"{t.Topic}: {t.ErrorCode} {t.Message}"));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, answer.Topics[6].ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, answer.Topics[7].ErrorCode);
        Assert.Contains("retention.ms", answer.Topics[7].Message, StringComparison.Ordinal);

        // No topic's change crossed to another silo on its own: at most one relay call per other silo.
        var forwardedAfter = (Forwarded(setup, "topic"), Forwarded(setup, "topic-batch"));
        Assert.Equal(forwardedBefore.Item1, forwardedAfter.Item1);
        Assert.InRange(forwardedAfter.Item2 - forwardedBefore.Item2, 0, 2);

        // What was answered is what every silo reads at the answer's offset; the refused topic kept its configs.
        foreach (var silo in setup.Silos)
        {
            using var client = new Client.MetaClient(new Client.MetaClientOptions { BootstrapUrls = [silo.Http.BaseAddress!] });
            for (var i = 0; i < names.Count; i++)
            {
                var configs = await client.DescribeTopicConfigsAsync(names[i], minOffset: answer.MetadataOffset);
                Assert.Equal($"{(i + 1) * 60_000}", configs.Configs.Single(c => c.Name == "retention.ms").Value);
            }

            var untouched = await client.DescribeTopicConfigsAsync("configured-bad-value", minOffset: answer.MetadataOffset);
            Assert.True(untouched.Configs.Single(c => c.Name == "retention.ms").IsDefault);
        }

        // Malformed: refused whole, naming the field, nothing written.
        head = answer.MetadataOffset;
        (string Body, string Field)[] malformed =
        [
            ("{\"topics\":[]}", "$.topics"),
            ("{\"topics\":[{\"topic\":\"configured-0\",\"configs\":{}}]}", "$.topics[0].configs"),
            ("{\"topics\":[{\"topic\":\"configured-0\",\"configs\":{\"retention.ms\":\"1\"}},{\"topic\":\"configured-0\",\"configs\":{\"retention.ms\":\"2\"}}]}", "$.topics[1].topic"),
            ("{\"topics\":[{\"topic\":\"bad name\",\"configs\":{\"retention.ms\":\"1\"}}]}", "$.topics[0].topic"),
        ];
        foreach (var (body, field) in malformed)
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await setup.Silos[1].Http.PostAsync("/v1/configs", content);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest && text.Contains(field, StringComparison.Ordinal), $"{body}: {(int)response.StatusCode} {text}");
        }

        await LogHead.AssertUnmovedAsync(setup.Silos[1].Http, head);
    }

    private static long Forwarded(MetaSetup setup, string grainType)
        => setup.Silos.Where(s => s.IsRunning).Sum(s => s.Services.GetRequiredService<ClusterCallDispatcher>().ForwardedCalls(grainType));
}
