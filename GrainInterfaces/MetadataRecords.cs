namespace OrleansMeta.GrainInterfaces;

/// <summary>Kinds of metadata log records; each record carries its entity's whole new state.</summary>
public static class RecordTypes
{
    public const string Broker = "broker";
    public const string Topic = "topic";
    public const string Partition = "partition";
    public const string Controller = "controller";

    /// <summary>A consumer group's header (<see cref="Contracts.GroupRecord"/>, key = group id).</summary>
    public const string Group = "group";

    /// <summary>One member of a consumer group (<see cref="Contracts.GroupMemberRecord"/>, key = group id / member id).</summary>
    public const string GroupMember = "group-member";

    /// <summary>The key of a <see cref="GroupMember"/> record.</summary>
    public static string GroupMemberKey(string groupId, string memberId) => groupId + "/" + memberId;
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

/// <summary>What a broker record says happened (<see cref="BrokerRecord.Change"/>).</summary>
public static class BrokerChanges
{
    /// <summary>A new incarnation registered; its broker epoch is this record's own log offset.</summary>
    public const string Registered = "registered";
    public const string Unfenced = "unfenced";
    public const string ControlledShutdown = "controlled-shutdown";

    /// <summary>Controlled shutdown finished: the broker was told it may stop and is fenced until a new incarnation
    /// registers (Kafka fences a broker when it answers SHUTDOWN_NOW).</summary>
    public const string ShutDown = "shut-down";
    public const string SessionExpired = "session-expired";

    /// <summary>The broker is gone for good (UnregisterBroker); images drop it.</summary>
    public const string Unregistered = "unregistered";
}

/// <summary>A broker's registration and state (metadata log record <c>broker</c>, key = broker id).</summary>
/// <param name="BrokerEpoch">The log offset of this incarnation's <c>registered</c> record, as in Kafka (so epochs grow
/// and are unique across brokers). A <c>registered</c> record cannot hold its own offset before it is written: it carries
/// 0 and the image fills in the record's offset.</param>
/// <param name="RegistrationOffset">The same offset: a broker is caught up once it has applied it.</param>
/// <param name="Change">What happened: see <see cref="BrokerChanges"/>.</param>
/// <param name="StateVersion">The version of the broker grain's state row that this record was written with. A change
/// that depends on the broker's epoch or state (AlterPartition) is fenced on that row still being at this version, so a
/// lagging image cannot let a replaced or fenced incarnation act. 0 in records written before the field existed.</param>
public sealed record BrokerRecord(
    int BrokerId,
    Guid IncarnationId,
    long BrokerEpoch,
    IReadOnlyList<ListenerRecord> Listeners,
    string? Rack,
    string State,
    long RegistrationOffset,
    string Change,
    long StateVersion = 0);

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
