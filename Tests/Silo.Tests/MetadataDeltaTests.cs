using System.Text.Json;
using OrleansMeta.Client;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Api;

namespace OrleansMeta.Silo.Tests;

/// <summary>
/// Metadata deltas against the image alone, over many random record sequences: the Metadata answer at N with the
/// delta since N applied (<see cref="MetadataView.Apply"/>) equals the Metadata answer at M, for every pair N ≤ M.
/// </summary>
public sealed class MetadataDeltaTests
{
    private static readonly string[] Names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_delta_applied_to_the_answer_at_N_gives_the_answer_at_M_for_random_change_sequences(bool includeFenced)
    {
        for (var seed = 0; seed < 150; seed++)
        {
            var images = RandomImages(new Random(seed), records: 80);
            for (var i = 0; i < images.Count; i += 1 + (seed % 3))
            {
                var view = MetadataEndpoints.Build(images[i], null, includeFenced, "c");
                for (var j = i; j < images.Count; j += 1 + (seed % 4))
                {
                    var delta = MetadataDeltaEndpoint.Build(images[j], images[i].Offset, null, includeFenced, "c");
                    Assert.Null(delta.Full);
                    var applied = MetadataView.Apply(view, delta, includeFenced);
                    var expected = MetadataEndpoints.Build(images[j], null, includeFenced, "c");
                    Assert.True(Json(expected) == Json(applied), $"seed {seed}, since {images[i].Offset} to {images[j].Offset}:\n{Json(expected)}\n{Json(applied)}");
                }
            }
        }
    }

    [Fact]
    public void A_delta_for_some_topics_brings_their_live_entries_to_the_answer_at_M()
    {
        for (var seed = 0; seed < 100; seed++)
        {
            var images = RandomImages(new Random(seed), records: 60);
            var wanted = string.Join(',', Names.Take(3));
            for (var i = 0; i < images.Count; i += 2)
            {
                var view = MetadataEndpoints.Build(images[i], wanted, false, "c");
                var delta = MetadataDeltaEndpoint.Build(images[^1], images[i].Offset, wanted, false, "c");
                Assert.All(delta.Topics.Select(t => t.Name).Concat(delta.DeletedTopics.Select(t => t.Name)), name => Assert.Contains(name, Names.Take(3)));
                var applied = MetadataView.Apply(view, delta);
                var expected = MetadataEndpoints.Build(images[^1], wanted, false, "c");
                Assert.Equal(Live(expected), Live(applied));
            }
        }

        static string Live(MetadataResponse metadata)
            => Json(metadata with { Topics = [.. metadata.Topics.Where(t => t.ErrorCode is null).OrderBy(t => t.Name, StringComparer.Ordinal)] });
    }

    [Fact]
    public void A_delta_since_the_current_offset_is_empty_and_one_partition_change_costs_one_partition()
    {
        var log = new Log();
        var id = Guid.NewGuid();
        var image = MetadataImage.Empty.Apply([log.Record(RecordTypes.Topic, Topic("big", id, 1000))]);
        var empty = MetadataDeltaEndpoint.Build(image, image.Offset, null, false, "c");
        Assert.Equal(image.Offset, empty.MetadataOffset);
        Assert.Empty(empty.Topics);
        Assert.Empty(empty.DeletedTopics);
        Assert.Empty(empty.Brokers);

        var before = image.Offset;
        image = image.Apply([log.Record(RecordTypes.Partition, new PartitionRecord(id, "big", new PartitionState(517, [1, 2], [2], 2, 1, 1), "leader-elected", 1))]);
        var delta = MetadataDeltaEndpoint.Build(image, before, null, false, "c");
        var topic = Assert.Single(delta.Topics);
        Assert.Equal(1000, topic.PartitionCount);
        Assert.Equal(517, Assert.Single(topic.Partitions).Partition);
    }

    [Fact]
    public void A_config_change_is_not_in_the_delta_because_the_metadata_answer_has_no_configs()
    {
        var log = new Log();
        var created = Topic("cfg", Guid.NewGuid(), 3);
        var image = MetadataImage.Empty.Apply([log.Record(RecordTypes.Topic, created)]);
        var before = image.Offset;
        image = image.Apply([log.Record(RecordTypes.Topic, created with { Configs = new Dictionary<string, string> { ["retention.ms"] = "1" }, Change = "configs-altered" })]);
        Assert.Empty(MetadataDeltaEndpoint.Build(image, before, null, false, "c").Topics);
    }

    [Fact]
    public void Once_the_oldest_tombstones_are_forgotten_a_delta_since_before_them_is_the_full_answer()
    {
        var log = new Log();
        var image = MetadataImage.Empty.Apply([log.Record(RecordTypes.Topic, Topic("kept", Guid.NewGuid(), 2))]);
        var start = image.Offset;
        var records = new List<LoggedRecord>();
        for (var i = 0; i <= MetadataChanges.MaxTopicTombstones; i++)
        {
            var topic = Topic($"gone-{i}", Guid.NewGuid(), 1);
            records.Add(log.Record(RecordTypes.Topic, topic));
            records.Add(log.Record(RecordTypes.Topic, topic with { Deleted = true, InitialPartitions = [], Change = "deleted" }));
        }

        image = image.Apply(records);
        Assert.True(image.Changes.Floor > start);
        Assert.Equal(MetadataChanges.MaxTopicTombstones, image.Changes.Tombstones.Count);

        var delta = MetadataDeltaEndpoint.Build(image, start, null, false, "c");
        Assert.NotNull(delta.Full);
        Assert.Equal(image.Changes.Floor, delta.MinSinceOffset);
        Assert.Equal(Json(MetadataEndpoints.Build(image, null, false, "c")), Json(MetadataView.Apply(MetadataEndpoints.Build(MetadataImage.Empty, null, false, "c"), delta)));

        // From the floor on, deltas still answer: the newest deletions are remembered.
        var recent = MetadataDeltaEndpoint.Build(image, image.Changes.Floor, null, false, "c");
        Assert.Null(recent.Full);
        Assert.NotEmpty(recent.DeletedTopics);
    }

    /// <summary>Images after each batch of a random record sequence (batches of 1–6 records, as the tailer applies pages).</summary>
    private static List<MetadataImage> RandomImages(Random random, int records)
    {
        var log = new Log();
        var model = new Model(random);
        var images = new List<MetadataImage> { MetadataImage.Empty };
        var image = MetadataImage.Empty;
        var written = 0;
        while (written < records)
        {
            var batch = Enumerable.Range(0, random.Next(1, 7)).Select(_ => model.Next(log)).ToList();
            written += batch.Count;
            image = image.Apply(batch);
            images.Add(image);
        }

        return images;
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, JsonSerializerOptions.Web);

    private static TopicRecord Topic(string name, Guid id, int partitions) => new(
        name, id, 2, new Dictionary<string, string>(),
        [.. Enumerable.Range(0, partitions).Select(p => new PartitionState(p, [1, 2], [1, 2], 1, 0, 0))], false, "created");

    private sealed class Log
    {
        private long _offset;

        public LoggedRecord Record<T>(string type, T value)
            => new(++_offset, type, "key", JsonSerializer.SerializeToUtf8Bytes(value, JsonSerializerOptions.Web), DateTimeOffset.UnixEpoch);
    }

    /// <summary>Generates plausible records: brokers registering, changing state and leaving; topics created, grown,
    /// reconfigured, deleted and created again; partitions changing leader and ISR; controllers taking over; and the
    /// odd record for a topic id that no longer exists.</summary>
    private sealed class Model(Random random)
    {
        private readonly Dictionary<int, BrokerRecord> _brokers = [];
        private readonly Dictionary<string, TopicRecord> _topics = [];
        private readonly Dictionary<string, int> _sizes = [];
        private readonly List<Guid> _deleted = [];
        private long _controllerEpoch;

        public LoggedRecord Next(Log log)
        {
            switch (random.Next(10))
            {
                case 0 or 1:
                    var id = random.Next(1, 6);
                    if (_brokers.TryGetValue(id, out var broker) && random.Next(4) == 0)
                    {
                        _brokers.Remove(id);
                        return log.Record(RecordTypes.Broker, broker with { Change = BrokerChanges.Unregistered });
                    }

                    var state = new[] { BrokerStates.Fenced, BrokerStates.Unfenced, BrokerStates.ControlledShutdown }[random.Next(3)];
                    broker = broker is null || random.Next(5) == 0
                        ? new BrokerRecord(id, Guid.NewGuid(), 0, [new ListenerRecord("PLAINTEXT", $"b{id}", 9092, "PLAINTEXT")], null, BrokerStates.Fenced, 0, BrokerChanges.Registered)
                        : broker with { State = state, Change = state };
                    _brokers[id] = broker;
                    return log.Record(RecordTypes.Broker, broker);

                case 2:
                    var name = Names[random.Next(Names.Length)];
                    if (_topics.Remove(name, out var old))
                    {
                        _deleted.Add(old.TopicId);
                        return log.Record(RecordTypes.Topic, old with { Deleted = true, InitialPartitions = [], Change = "deleted" });
                    }

                    var created = Topic(name, Guid.NewGuid(), random.Next(1, 5));
                    _topics[name] = created;
                    _sizes[name] = created.InitialPartitions.Count;
                    return log.Record(RecordTypes.Topic, created);

                case 3 when _topics.Count > 0:
                    var topic = _topics.Values.ElementAt(random.Next(_topics.Count));
                    if (random.Next(2) == 0)
                    {
                        return log.Record(RecordTypes.Topic, topic with { Configs = new Dictionary<string, string> { ["retention.ms"] = $"{random.Next()}" }, Change = "configs-altered" });
                    }

                    var size = _sizes[topic.Name] + random.Next(1, 3);
                    _sizes[topic.Name] = size;
                    return log.Record(RecordTypes.Topic, Topic(topic.Name, topic.TopicId, size) with { Change = "partitions-added" });

                case 4 when _deleted.Count > 0:
                    return log.Record(RecordTypes.Partition, new PartitionRecord(_deleted[random.Next(_deleted.Count)], "stale",
                        new PartitionState(0, [3, 4], [4], 4, 9, 9), "leader-elected", 1));

                case 5:
                    return log.Record(RecordTypes.Controller, new ControllerRecord(++_controllerEpoch, $"silo-{random.Next(3)}"));

                default:
                    if (_topics.Count == 0)
                    {
                        goto case 2;
                    }

                    var changed = _topics.Values.ElementAt(random.Next(_topics.Count));
                    var partition = random.Next(_sizes[changed.Name]);
                    var replicas = new[] { random.Next(1, 6), random.Next(1, 6) }.Distinct().ToList();
                    var leader = random.Next(3) == 0 ? PartitionState.NoLeader : replicas[0];
                    return log.Record(RecordTypes.Partition, new PartitionRecord(changed.TopicId, changed.Name,
                        new PartitionState(partition, replicas, leader < 0 ? [] : [leader], leader, random.Next(100), random.Next(100)), "leader-elected", 1));
            }
        }
    }
}
