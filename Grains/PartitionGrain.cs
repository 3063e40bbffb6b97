using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains;

public sealed class PartitionGrainState
{
    public PartitionState? State { get; set; }
}

/// <summary>
/// One partition (key <c>{topicId:N}/{partition}</c>). Its state starts as the topic's initial assignment and changes
/// only through AlterPartition from the leader (a compare-and-set on the partition epoch) or controller decisions
/// (fenced by the controller epoch). Every change is written with its metadata record.
/// </summary>
internal sealed class PartitionGrain(
    [PersistentState("partition")] IPersistentState<PartitionGrainState> state,
    MetadataImageService image,
    IMetadataLog log,
    IOptions<ControllerOptions> options) : Grain, IPartitionGrain
{
    private Guid _topicId;
    private int _partition;
    private string _topic = "";

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var slash = Key.IndexOf('/', StringComparison.Ordinal);
        _topicId = Guid.ParseExact(Key[..slash], "N");
        _partition = int.Parse(Key[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return Task.CompletedTask;
    }

    public async Task<PartitionChange> AlterPartitionAsync(AlterPartition command)
    {
        var metadata = await image.WaitForAsync(command.KnownOffset, options.Value.ImageWaitTimeout);
        for (var attempt = 0; ; attempt++)
        {
            var (current, next, fences) = ValidateAlterPartition(command, metadata);
            if (next is null)
            {
                // Nothing changes, so nothing is written (as in Kafka, where an empty change makes no record).
                return new PartitionChange(_topic, _topicId, current, null, null, null);
            }

            try
            {
                var offset = await WriteAsync(next, "isr-changed", controllerEpoch: 0, fences);
                return new PartitionChange(_topic, _topicId, next, offset, null, null);
            }
            catch (FencedWriteException) when (attempt == 0)
            {
                // A broker this change relies on moved on in the database (registered again, fenced, shut down) after
                // this silo's image saw it: judge again on an image at the log head, which holds that change.
                metadata = await image.WaitForAsync(await log.GetHeadAsync(CancellationToken.None), options.Value.ImageWaitTimeout);
            }
            catch (FencedWriteException)
            {
                throw new MetaException(ErrorCodes.StaleBrokerEpoch,
                    $"Broker {command.LeaderId} or a proposed ISR member changed while this AlterPartition was checked; refresh metadata and retry.",
                    409, retryable: true);
            }
        }
    }

    /// <summary>
    /// AlterPartition's checks in the order of Kafka's controller: the sender's broker epoch (and that it is not fenced),
    /// the partition's existence, the leader epoch, that the sender leads, the partition epoch, the shape of the new ISR,
    /// then that every other member is registered, unfenced and not shutting down. Returns the new state (null when
    /// nothing changes) and fences that make the broker checks hold in the database: the state row of every broker the
    /// change relies on must still be at the version this image saw, so a lagging image cannot accept a replaced
    /// (zombie) incarnation or a member fenced meanwhile. Differences from Kafka: docs/kafka-differences.md.
    /// </summary>
    private (PartitionState Current, PartitionState? Next, IReadOnlyList<WriteFence> Fences) ValidateAlterPartition(AlterPartition command, MetadataImage metadata)
    {
        if (!metadata.Brokers.TryGetValue(command.LeaderId, out var leader) || leader.Record.BrokerEpoch != command.BrokerEpoch || leader.IsFenced)
        {
            throw MetaException.Conflict(ErrorCodes.StaleBrokerEpoch,
                $"Broker epoch {command.BrokerEpoch} is not the current, unfenced epoch of broker {command.LeaderId}.");
        }

        var current = CurrentState(metadata);
        if (command.LeaderEpoch != current.LeaderEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.FencedLeaderEpoch,
                $"Leader epoch {command.LeaderEpoch} does not match the partition's leader epoch {current.LeaderEpoch}.");
        }

        if (command.LeaderId != current.Leader)
        {
            throw MetaException.Conflict(ErrorCodes.NotLeaderOrFollower,
                $"Broker {command.LeaderId} does not lead {_topic}-{_partition}; the leader is {current.Leader} at leader epoch {current.LeaderEpoch}.");
        }

        if (command.PartitionEpoch != current.PartitionEpoch)
        {
            throw MetaException.Conflict(ErrorCodes.InvalidUpdateVersion,
                $"Partition epoch {command.PartitionEpoch} is stale; {_topic}-{_partition} is at partition epoch {current.PartitionEpoch}. Refresh metadata and retry.");
        }

        var isr = command.NewIsr ?? [];
        if (isr.Count == 0 || isr.Distinct().Count() != isr.Count || isr.Any(b => !current.Replicas.Contains(b)) || !isr.Contains(command.LeaderId))
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest,
                $"The new ISR [{string.Join(", ", isr)}] must be distinct replicas of [{string.Join(", ", current.Replicas)}] and include the leader {command.LeaderId}.");
        }

        // The leader itself passed the epoch check; it may be in controlled shutdown, still leading what no one else can.
        var members = isr.Where(b => b != command.LeaderId).ToList();
        var ineligible = members.Where(b => !(metadata.Brokers.TryGetValue(b, out var broker) && broker.IsActive)).ToList();
        if (ineligible.Count > 0)
        {
            throw MetaException.Conflict(ErrorCodes.IneligibleReplica,
                $"Broker{(ineligible.Count > 1 ? "s" : "")} {string.Join(", ", ineligible)} cannot be in the ISR: not registered, fenced or shutting down.");
        }

        if (isr.Count == current.Isr.Count && isr.All(current.Isr.Contains))
        {
            return (current, null, []);
        }

        var fences = new List<WriteFence>();
        foreach (var broker in members.Prepend(command.LeaderId).Select(b => metadata.Brokers[b].Record).Where(r => r.StateVersion > 0))
        {
            fences.Add(new WriteFence(BrokerGrain.GrainIdFor(broker.BrokerId), BrokerGrain.StateName, broker.StateVersion));
        }

        return (current, current with { Isr = [.. isr], PartitionEpoch = current.PartitionEpoch + 1 }, fences);
    }

    public async Task<PartitionChange> ApplyAsync(PartitionCommand command)
    {
        var (current, _) = await LoadAsync(command.KnownOffset);
        var decision = Elections.Decide(current, command);
        if (decision.NewState is null)
        {
            return new PartitionChange(_topic, _topicId, current, null, decision.ErrorCode, decision.Message);
        }

        // The controller's epoch row must still be at the epoch this decision carries, or the write does not happen.
        var fence = new WriteFence(new GrainId("controller", IControllerGrain.Key), ControllerGrain.EpochStateName, command.ControllerEpoch);
        try
        {
            var offset = await WriteAsync(decision.NewState, decision.Change, command.ControllerEpoch, [fence]);
            return new PartitionChange(_topic, _topicId, decision.NewState, offset, null, null);
        }
        catch (FencedWriteException fenced)
        {
            throw new MetaException(ErrorCodes.NotController,
                $"Controller epoch {command.ControllerEpoch} is stale (now {fenced.FoundVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "newer"}); a newer controller decides.",
                503, retryable: true);
        }
    }

    private async Task<(PartitionState State, MetadataImage Image)> LoadAsync(long knownOffset)
    {
        var metadata = await image.WaitForAsync(knownOffset, options.Value.ImageWaitTimeout);
        return (CurrentState(metadata), metadata);
    }

    private PartitionState CurrentState(MetadataImage metadata)
    {
        if (metadata.FindTopic(_topicId) is not { } topic || _partition >= topic.Partitions.Length)
        {
            throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"Partition {_partition} of topic id {_topicId} does not exist (or was deleted).");
        }

        _topic = topic.Topic.Name;

        // Until its first change a partition's state is the one its topic was created with, as the image shows it.
        state.State.State ??= topic.Partitions[_partition];
        return state.State.State;
    }

    private async Task<long> WriteAsync(PartitionState next, string change, long controllerEpoch, IReadOnlyList<WriteFence> fences)
    {
        var previous = state.State.State;
        state.State.State = next;
        try
        {
            return await state.WriteStateAsync([Records.Partition(new PartitionRecord(_topicId, _topic, next, change, controllerEpoch))], fences) ?? 0;
        }
        catch
        {
            state.State.State = previous;
            throw;
        }
    }
}
