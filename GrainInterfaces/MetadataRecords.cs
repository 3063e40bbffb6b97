namespace OrleansMeta.GrainInterfaces;

/// <summary>Kinds of metadata log records; each record carries its entity's whole new state.</summary>
public static class RecordTypes
{
    public const string Broker = "broker";
    public const string Topic = "topic";
    public const string Partition = "partition";
    public const string Controller = "controller";
}

/// <summary>A broker endpoint.</summary>
public sealed record ListenerRecord(string Name, string Host, int Port, string SecurityProtocol);

/// <summary>Broker states, as in KRaft: registered brokers start fenced and are unfenced once caught up.</summary>
public static class BrokerStates
{
    public const string Fenced = "fenced";
    public const string Unfenced = "unfenced";
    public const string ControlledShutdown = "controlled-shutdown";
}

/// <summary>A broker's registration and state (metadata log record <c>broker</c>, key = broker id).</summary>
/// <param name="Change">What happened: registered, unfenced, fenced, session-expired, controlled-shutdown.</param>
public sealed record BrokerRecord(
    int BrokerId,
    Guid IncarnationId,
    long BrokerEpoch,
    IReadOnlyList<ListenerRecord> Listeners,
    string? Rack,
    string State,
    long RegistrationOffset,
    string Change);

/// <summary>One partition's replicas and leadership.</summary>
public sealed record PartitionState(
    int Partition,
    IReadOnlyList<int> Replicas,
    IReadOnlyList<int> Isr,
    int Leader,
    int LeaderEpoch,
    int PartitionEpoch)
{
    public const int NoLeader = -1;
}

/// <summary>
/// A topic (metadata log record <c>topic</c>, key = name): its id, configs and the initial state of every partition.
/// Later partition changes come as <see cref="PartitionRecord"/>s; a record with <paramref name="Deleted"/> removes the
/// topic and all its partitions.
/// </summary>
public sealed record TopicRecord(
    string Name,
    Guid TopicId,
    short ReplicationFactor,
    IReadOnlyDictionary<string, string> Configs,
    IReadOnlyList<PartitionState> InitialPartitions,
    bool Deleted,
    string Change);

/// <summary>A partition change (metadata log record <c>partition</c>, key = topic id / partition).</summary>
/// <param name="Change">leader-elected, isr-changed, broker-fenced, preferred-election, unclean-election, ...</param>
public sealed record PartitionRecord(Guid TopicId, string Topic, PartitionState State, string Change, long ControllerEpoch);

/// <summary>A controller taking over (metadata log record <c>controller</c>).</summary>
public sealed record ControllerRecord(long Epoch, string Silo);
