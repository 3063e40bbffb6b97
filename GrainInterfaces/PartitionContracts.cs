using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

/// <summary>AlterPartition from the partition leader: a compare-and-set on the partition epoch.</summary>
/// <param name="KnownOffset">The metadata offset at which the caller saw the topic (the partition waits for it).</param>
public sealed record AlterPartition(int LeaderId, long BrokerEpoch, int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> NewIsr, long KnownOffset);

/// <summary>What the controller asks of a partition. The partition computes the result on its own current state.</summary>
public enum PartitionCommandKind
{
    /// <summary>Reconcile with broker liveness: drop fenced brokers from ISR, elect a live leader if needed.</summary>
    Reconcile,

    /// <summary>Move leadership away from <see cref="PartitionCommand.Broker"/> (controlled shutdown).</summary>
    MoveLeadershipAway,

    /// <summary>Make the preferred replica leader when it is live and in sync.</summary>
    Preferred,

    /// <summary>Elect any live replica when no live ISR member exists.</summary>
    Unclean,
}

/// <summary>A controller decision for one partition, fenced by the controller epoch.</summary>
/// <param name="LiveBrokers">Unfenced brokers, as the controller's image shows them.</param>
/// <param name="ShuttingDownBrokers">Brokers in controlled shutdown: may stay in ISR but must not lead.</param>
/// <param name="AllowUnclean">The topic's unclean.leader.election.enable.</param>
/// <param name="KnownOffset">The metadata offset the decision is based on.</param>
public sealed record PartitionCommand(
    PartitionCommandKind Kind,
    long ControllerEpoch,
    IReadOnlyList<int> LiveBrokers,
    IReadOnlyList<int> ShuttingDownBrokers,
    bool AllowUnclean,
    int? Broker,
    long KnownOffset);

/// <summary>A partition after a command; <paramref name="ErrorCode"/> explains a refusal that is not an exception
/// (e.g. ELECTION_NOT_NEEDED).</summary>
public sealed record PartitionChange(string Topic, Guid TopicId, PartitionState State, long? MetadataOffset, string? ErrorCode, string? Message);

/// <summary>One partition (key: <c>{topicId:N}/{partition}</c>, so a recreated topic never meets the old one's state).</summary>
[GrainType("partition")]
public interface IPartitionGrain : IGrainWithStringKey
{
    Task<PartitionChange> AlterPartitionAsync(AlterPartition command);

    Task<PartitionChange> ApplyAsync(PartitionCommand command);
}

/// <summary>One controller command for many partitions, sent in one call to the silo that owns them.</summary>
/// <param name="Command">The command every partition applies (same kind, epoch, liveness and unclean rule).</param>
/// <param name="Partitions">Partition keys (<see cref="PartitionKeys.For"/>).</param>
public sealed record PartitionBatch(PartitionCommand Command, IReadOnlyList<string> Partitions);

/// <summary>A partition of a batch whose command failed (the exception's error code and message): nothing was changed,
/// or, for a write with an unknown outcome, the partition reloads before it answers again.</summary>
/// <param name="Retryable">Whether the same command may succeed when sent again.</param>
public sealed record PartitionFailure(string Partition, string ErrorCode, string Message, bool Retryable = false);

/// <summary>What a batch did: the outcome of every partition whose command ran, and those that failed.</summary>
public sealed record PartitionBatchResult(IReadOnlyList<PartitionChange> Changes, IReadOnlyList<PartitionFailure> Failures);

/// <summary>A broker's AlterPartition for many partitions (one command per partition, in the same order), sent in one
/// call to the silo that owns them.</summary>
public sealed record PartitionAlterBatch(IReadOnlyList<string> Partitions, IReadOnlyList<AlterPartition> Commands);

/// <summary>
/// Relays a controller's batch, or a broker's batched AlterPartition, to the partition grains of the silo it runs on
/// (the sender picks a key pinned to the silo that owns the batch's partitions), so that a failover or a broker's ISR
/// changes cost one silo-to-silo call per batch rather than one per partition. Stateless: every decision is still
/// taken and written by each partition grain.
/// </summary>
[GrainType("partition-batch")]
public interface IPartitionBatchGrain : IGrainWithStringKey
{
    [ReadOnly]
    Task<PartitionBatchResult> ApplyAsync(PartitionBatch batch);

    /// <summary>Sends each partition its own AlterPartition (a broker's batched request).</summary>
    [ReadOnly]
    Task<PartitionBatchResult> AlterAsync(PartitionAlterBatch batch);
}

public static class PartitionKeys
{
    public static string For(Guid topicId, int partition) => $"{topicId:N}/{partition}";
}
