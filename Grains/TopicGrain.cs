using Microsoft.Extensions.Options;
using OrleansMeta.Contracts;
using OrleansMeta.GrainInterfaces;
using OrleansMeta.Grains.Metadata;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains;

public sealed class TopicGrainState
{
    public TopicRecord? Current { get; set; }
}

/// <summary>
/// One topic, keyed by its collision key (<see cref="TopicKeys.For"/>): the names that differ only in '.' versus '_'
/// share this grain, so it holds at most one of them and refuses the others as Kafka does. Creation writes the topic with every partition's replicas, leader and ISR in one record (one
/// transaction, however many partitions); later leader and ISR changes belong to the partition grains.
/// </summary>
internal sealed class TopicGrain(
    [PersistentState("topic")] IPersistentState<TopicGrainState> state,
    MetadataImageService image,
    IMetadataLog log,
    IOptions<ControllerOptions> controllerOptions) : Grain, ITopicGrain
{
    public async Task<TopicChange> CreateAsync(CreateTopic command)
    {
        var name = command.Name;
        TopicRules.ValidateNewName(name);
        CheckKey(name);
        if (state.State.Current is { Deleted: false } existing)
        {
            // Kafka's order: an existing name first, then a collision with another name.
            throw existing.Name == name
                ? MetaException.Conflict(ErrorCodes.TopicAlreadyExists, $"Topic '{name}' already exists (id {existing.TopicId}).")
                : MetaException.Invalid(ErrorCodes.InvalidTopic,
                    $"Topic '{name}' collides with existing topic: {existing.Name} (names that differ only in '.' and '_' cannot both exist).");
        }

        var current = await CurrentImageAsync();
        IReadOnlyList<IReadOnlyList<int>> assignment;
        short replicationFactor;
        if (command.Assignment is { } explicitAssignment)
        {
            if (command.Partitions is not null || command.ReplicationFactor is not null)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidRequest, "Give either an explicit assignment or partitions and a replication factor, not both.");
            }

            ReplicaAssignment.Validate(explicitAssignment, current);
            CheckPartitionCount(explicitAssignment.Count);
            assignment = explicitAssignment;
            replicationFactor = (short)explicitAssignment[0].Count;
        }
        else
        {
            var partitions = command.Partitions ?? 1;
            CheckPartitionCount(partitions);
            var available = AvailableBrokers(current);
            replicationFactor = command.ReplicationFactor ?? (short)Math.Clamp(available.Count, 1, 3);
            assignment = ReplicaAssignment.Assign(name, 0, partitions, replicationFactor, available);
        }

        var configs = TopicRules.ValidateConfigs(command.Configs, replicationFactor);
        var record = new TopicRecord(name, command.ValidateOnly ? Guid.Empty : Guid.NewGuid(), replicationFactor, configs,
            InitialStates(assignment, 0, current), false, "created");
        return command.ValidateOnly ? new TopicChange(record, current.Offset) : await WriteAsync(record);
    }

    public async Task<TopicChange> DeleteAsync(string name)
    {
        var topic = Existing(name);
        return await WriteAsync(topic with { Deleted = true, InitialPartitions = [], Change = "deleted" });
    }

    public async Task<TopicChange> AddPartitionsAsync(string name, int totalCount, IReadOnlyList<IReadOnlyList<int>>? assignment, bool validateOnly)
    {
        var topic = Existing(name);
        var existing = topic.InitialPartitions.Count;
        if (totalCount <= existing)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidPartitions,
                $"Topic '{name}' has {existing} partitions; the new count must be larger (partitions can be added, never removed).");
        }

        CheckPartitionCount(totalCount);
        var current = await CurrentImageAsync();
        var added = totalCount - existing;
        if (assignment is not null)
        {
            if (assignment.Count != added)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidReplicaAssignment, $"The assignment lists {assignment.Count} partitions; {added} are being added.");
            }

            ReplicaAssignment.Validate(assignment, current);
            if (assignment[0].Count != topic.ReplicationFactor)
            {
                throw MetaException.Invalid(ErrorCodes.InvalidReplicaAssignment,
                    $"New partitions need {topic.ReplicationFactor} replicas, the topic's replication factor.");
            }
        }

        var newAssignment = assignment ?? ReplicaAssignment.Assign(name, existing, added, topic.ReplicationFactor, AvailableBrokers(current));
        var grown = topic with
        {
            InitialPartitions = [.. topic.InitialPartitions, .. InitialStates(newAssignment, existing, current)],
            Change = "partitions-added",
        };
        return validateOnly ? new TopicChange(grown, current.Offset) : await WriteAsync(grown);
    }

    public async Task<TopicChange> AlterConfigsAsync(string name, IReadOnlyDictionary<string, string?> changes, bool validateOnly)
    {
        var topic = Existing(name);
        var merged = new Dictionary<string, string>(topic.Configs, StringComparer.Ordinal);
        foreach (var (key, value) in changes)
        {
            if (value is null)
            {
                if (!TopicRules.KnownConfigs.Contains(key))
                {
                    throw MetaException.Invalid(ErrorCodes.InvalidConfig, $"'{key}' is not a topic config this service knows.");
                }

                merged.Remove(key);
            }
            else
            {
                merged[key] = value;
            }
        }

        var configs = TopicRules.ValidateConfigs(merged, topic.ReplicationFactor);
        var altered = topic with { Configs = configs, Change = "configs-altered" };
        return validateOnly ? new TopicChange(altered, image.Current.Offset) : await WriteAsync(altered);
    }

    private TopicRecord Existing(string name)
    {
        TopicRules.ValidateName(name);
        CheckKey(name);
        return state.State.Current is { Deleted: false } topic && topic.Name == name
            ? topic
            : throw MetaException.NotFound(ErrorCodes.UnknownTopicOrPartition, $"Topic '{name}' does not exist.");
    }

    /// <summary>A call must reach the grain of the name's collision key; anything else is a caller's bug.</summary>
    private void CheckKey(string name)
    {
        if (TopicKeys.For(name) != Key)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidRequest, $"Topic '{name}' belongs to topic grain '{TopicKeys.For(name)}', not '{Key}'.");
        }
    }

    private async Task<TopicChange> WriteAsync(TopicRecord record)
    {
        var previous = state.State.Current;
        state.State.Current = record;
        try
        {
            var offset = await state.WriteStateAsync([Records.Topic(record)]) ?? 0;
            return new TopicChange(record, offset);
        }
        catch
        {
            state.State.Current = previous;
            throw;
        }
    }

    /// <summary>The image as of the newest committed record: assignment must see a broker unfenced a moment ago.</summary>
    private async Task<MetadataImage> CurrentImageAsync()
        => await image.WaitForAsync(await log.GetHeadAsync(CancellationToken.None), controllerOptions.Value.ImageWaitTimeout);

    private static List<BrokerImage> AvailableBrokers(MetadataImage image)
        => [.. image.Brokers.Values.Where(b => !b.IsFenced && !b.IsShuttingDown)];

    private static void CheckPartitionCount(int count)
    {
        if (count is < 1 or > TopicRules.MaxPartitions)
        {
            throw MetaException.Invalid(ErrorCodes.InvalidPartitions, $"A topic needs 1 to {TopicRules.MaxPartitions} partitions; {count} were asked for.");
        }
    }

    /// <summary>Leader: the first live replica in assignment order; ISR: the live replicas (all of them, when none is).</summary>
    private static List<PartitionState> InitialStates(IReadOnlyList<IReadOnlyList<int>> assignment, int firstPartition, MetadataImage image)
    {
        bool Live(int broker) => image.Brokers.TryGetValue(broker, out var b) && !b.IsFenced && !b.IsShuttingDown;
        var states = new List<PartitionState>(assignment.Count);
        for (var i = 0; i < assignment.Count; i++)
        {
            var replicas = assignment[i];
            var live = replicas.Where(Live).ToList();
            var isr = live.Count > 0 ? live : [.. replicas];
            states.Add(new PartitionState(firstPartition + i, [.. replicas], isr, live.Count > 0 ? live[0] : PartitionState.NoLeader, 0, 0));
        }

        return states;
    }
}
