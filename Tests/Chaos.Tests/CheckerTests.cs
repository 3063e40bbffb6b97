using System.Text.Json;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;

namespace OrleansMeta.Chaos.Tests;

/// <summary>The checker can fail: each test feeds it a history or a log with one known fault and expects that fault,
/// naming the entity, and nothing for the healthy baseline.</summary>
public sealed class CheckerTests
{
    private static readonly Guid TopicId = Guid.Parse("11111111-2222-3333-4444-555555555555");
    private static readonly Guid Incarnation = Guid.Parse("99999999-8888-7777-6666-555555555555");
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static LogEntry Entry(long offset, string type, string key, object payload)
        => new(offset, type, key, JsonSerializer.SerializeToUtf8Bytes(payload, payload.GetType(), Json));

    private static LogEntry Broker(long offset, int id)
        => Entry(offset, RecordTypes.Broker, id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            new BrokerRecord(id, id == 1 ? Incarnation : Guid.NewGuid(), 0, [], null, BrokerStates.Unfenced, 0, BrokerChanges.Registered));

    private static LogEntry Topic(long offset)
        => Entry(offset, RecordTypes.Topic, "t", new TopicRecord("t", TopicId, 2, new Dictionary<string, string>(),
            [new PartitionState(0, [1, 2], [1, 2], 1, 0, 0)], false, "created"));

    private static LogEntry Partition(long offset, int leader, int leaderEpoch, int partitionEpoch, int[] isr)
        => Entry(offset, RecordTypes.Partition, $"{TopicId:N}/0", new PartitionRecord(TopicId, "t", new PartitionState(0, [1, 2], isr, leader, leaderEpoch, partitionEpoch), "isr-changed", 1));

    /// <summary>Brokers 1 and 2 at offsets 1 and 2, topic t at 3, an ISR shrink at 4.</summary>
    private static List<LogEntry> HealthyLog() => [Broker(1, 1), Broker(2, 2), Topic(3), Partition(4, 1, 0, 1, [1])];

    private static Operation Write(long id, OperationKind kind, long offset, params Effect[] effects) => new()
    {
        Id = id, Client = "test", Kind = kind, Input = "", InvokedAt = id, CompletedAt = id + 1, Outcome = Outcome.Ok, MetadataOffset = offset, Effects = effects,
    };

    private static List<Operation> HealthyHistory() =>
    [
        Write(1, OperationKind.RegisterBroker, 1, new BrokerEffect(1, Incarnation, 1)),
        Write(2, OperationKind.CreateTopic, 3, new TopicEffect("t", TopicId, TopicEffect.Created)),
        Write(3, OperationKind.AlterPartition, 4, new PartitionEffect("t", 0, 1, 0, 1, [1]) { ComparedPartitionEpoch = 0 }),
    ];

    private static MetadataResponse Image(long offset, int partitionEpoch, int[] isr, params int[] brokers) => new(
        [.. brokers.Select(b => new BrokerInfo(b, Guid.Empty, b, [], null, BrokerStates.Unfenced))],
        [new TopicMetadata("t", TopicId, null, [new PartitionInfo(0, 1, 0, partitionEpoch, [1, 2], isr)])],
        new ControllerInfo(null, 1),
        offset);

    private static IReadOnlyList<string> Violations(IEnumerable<LogEntry> log, long head, IReadOnlyList<Operation> history, IReadOnlyDictionary<string, MetadataResponse>? images = null)
        => [.. HistoryChecker.Check(history, MetadataLog.Replay(log, head), images ?? new Dictionary<string, MetadataResponse>()).SelectMany(i => i.Violations)];

    [Fact]
    public void A_healthy_history_has_no_violations()
        => Assert.Empty(Violations(HealthyLog(), 4, HealthyHistory()));

    [Fact]
    public void A_lost_acknowledged_partition_change_is_a_violation_naming_the_partition()
    {
        var log = HealthyLog()[..3];
        log.Add(Partition(4, 1, 0, 1, [1, 2])); // the log holds something else at 4: the acknowledged shrink is gone
        var violation = Assert.Single(Violations(log, 4, HealthyHistory()));
        Assert.Contains("partition t/0: acknowledged write lost", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lost_broker_registration_is_a_violation_naming_the_broker()
    {
        var history = HealthyHistory();
        history.Add(Write(4, OperationKind.RegisterBroker, 4, new BrokerEffect(3, Guid.NewGuid(), 4)));
        var violation = Assert.Single(Violations(HealthyLog(), 4, history));
        Assert.Contains("broker 3: acknowledged write lost", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_leaders_in_one_leader_epoch_are_a_violation_naming_the_partition()
    {
        var log = HealthyLog();
        log.Add(Partition(5, 2, 0, 2, [2])); // leader 2 under leader epoch 0, which broker 1 already leads
        var violations = Violations(log, 5, HealthyHistory());
        Assert.Contains(violations, v => v.StartsWith("partition t/0: leader epoch 0 has leaders 1, 2", StringComparison.Ordinal));
    }

    [Fact]
    public void A_partition_epoch_that_does_not_grow_is_a_violation()
    {
        var log = HealthyLog();
        log.Add(Partition(5, 1, 1, 1, [1]));
        Assert.Contains(Violations(log, 5, HealthyHistory()), v => v.Contains("partition t/0: partition epoch 1 at offset 5 does not exceed 1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_leader_outside_the_isr_is_a_violation()
    {
        var log = HealthyLog();
        log.Add(Partition(5, 1, 0, 2, [2]));
        Assert.Contains(Violations(log, 5, HealthyHistory()), v => v.Contains("partition t/0 at offset 5: leader 1 not in ISR", StringComparison.Ordinal));
    }

    [Fact]
    public void A_gap_in_the_log_is_a_violation_naming_the_missing_offsets()
    {
        var log = HealthyLog();
        log.RemoveAt(1);
        var violations = Violations(log, 4, [HealthyHistory()[0]]);
        Assert.Contains(violations, v => v.Contains("gap, offsets 2..2 missing before topic t", StringComparison.Ordinal));
    }

    [Fact]
    public void A_read_that_missed_its_write_is_a_violation_naming_the_partition()
    {
        var history = HealthyHistory();
        history.Add(new Operation
        {
            Id = 4, Client = "test", Kind = OperationKind.ReadMetadata, Input = "", InvokedAt = 5, CompletedAt = 6, Outcome = Outcome.Ok,
            MinOffset = 4, MetadataOffset = 4, MustSee = [new PartitionEffect("t", 0, 1, 0, 1, [1])],
            Answer = Image(4, 0, [1, 2], 1, 2), // answered at the write's offset but with the partition as it was before
        });
        var violation = Assert.Single(Violations(HealthyLog(), 4, history));
        Assert.Contains("partition t/0: read missed its write", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_silo_image_that_differs_from_the_replay_is_a_violation()
    {
        var images = new Dictionary<string, MetadataResponse> { ["silo0"] = Image(4, 0, [1, 2], 1, 2) };
        var violations = Violations(HealthyLog(), 4, HealthyHistory(), images);
        Assert.Contains(violations, v => v.StartsWith("silo silo0: topic t", StringComparison.Ordinal));
    }

    [Fact]
    public void An_acknowledged_stale_alter_partition_is_a_violation()
    {
        var log = HealthyLog();
        log.Add(Partition(5, 1, 0, 2, [1, 2]));
        var history = HealthyHistory();
        history.Add(Write(4, OperationKind.AlterPartition, 5, new PartitionEffect("t", 0, 1, 0, 2, [1, 2]) { ComparedPartitionEpoch = 0 })); // applied on top of epoch 1
        var violation = Assert.Single(Violations(log, 5, history));
        Assert.Contains("partition t/0: AlterPartition compared against partition epoch 0, but its record at offset 5 follows partition epoch 1", violation, StringComparison.Ordinal);
    }
}
