namespace OrleansMeta.Contracts;

/// <summary>
/// Error codes carried in the <c>code</c> member of problem+json responses. Kafka's names where one fits.
/// </summary>
public static class ErrorCodes
{
    /// <summary>A topic with that name exists.</summary>
    public const string TopicAlreadyExists = "TOPIC_ALREADY_EXISTS";
    /// <summary>The topic or partition does not exist.</summary>
    public const string UnknownTopicOrPartition = "UNKNOWN_TOPIC_OR_PARTITION";
    /// <summary>The topic name is not valid.</summary>
    public const string InvalidTopic = "INVALID_TOPIC_EXCEPTION";
    /// <summary>The partition count is not valid.</summary>
    public const string InvalidPartitions = "INVALID_PARTITIONS";
    /// <summary>The replication factor is not valid or exceeds the live brokers.</summary>
    public const string InvalidReplicationFactor = "INVALID_REPLICATION_FACTOR";
    /// <summary>An explicit replica assignment is not valid.</summary>
    public const string InvalidReplicaAssignment = "INVALID_REPLICA_ASSIGNMENT";
    /// <summary>A config key is unknown or its value is not valid.</summary>
    public const string InvalidConfig = "INVALID_CONFIG";
    /// <summary>The request is malformed.</summary>
    public const string InvalidRequest = "INVALID_REQUEST";
    /// <summary>The broker epoch is not the current one of that broker.</summary>
    public const string StaleBrokerEpoch = "STALE_BROKER_EPOCH";
    /// <summary>No broker with that id is registered.</summary>
    public const string BrokerIdNotRegistered = "BROKER_ID_NOT_REGISTERED";
    /// <summary>Another incarnation of the broker holds a live session.</summary>
    public const string DuplicateBrokerRegistration = "DUPLICATE_BROKER_REGISTRATION";
    /// <summary>The leader epoch is older than the partition's.</summary>
    public const string FencedLeaderEpoch = "FENCED_LEADER_EPOCH";
    /// <summary>The sender is not the partition leader.</summary>
    public const string NotLeaderOrFollower = "NOT_LEADER_OR_FOLLOWER";
    /// <summary>The partition epoch does not match: the change is based on stale state.</summary>
    public const string InvalidUpdateVersion = "INVALID_UPDATE_VERSION";
    /// <summary>A proposed ISR member is not a live, unfenced replica.</summary>
    public const string IneligibleReplica = "INELIGIBLE_REPLICA";
    /// <summary>The request reached a stale controller.</summary>
    public const string NotController = "NOT_CONTROLLER";
    /// <summary>The preferred leader already leads.</summary>
    public const string ElectionNotNeeded = "ELECTION_NOT_NEEDED";
    /// <summary>The preferred leader is not live or not in sync.</summary>
    public const string PreferredLeaderNotAvailable = "PREFERRED_LEADER_NOT_AVAILABLE";
    /// <summary>No live replica can lead.</summary>
    public const string EligibleLeadersNotAvailable = "ELIGIBLE_LEADERS_NOT_AVAILABLE";
    /// <summary>The request body is too large.</summary>
    public const string RequestTooLarge = "REQUEST_TOO_LARGE";
    /// <summary>The requested metadata offset was not reached in time.</summary>
    public const string OffsetNotAvailable = "OFFSET_NOT_AVAILABLE";
    /// <summary>The requested metadata offset is beyond the log head: it does not exist yet, and waiting will not help.</summary>
    public const string OffsetOutOfRange = "OFFSET_OUT_OF_RANGE";
    /// <summary>The request body is not sent as <c>application/json</c>.</summary>
    public const string UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE";
    /// <summary>The service cannot answer right now; retry.</summary>
    public const string Unavailable = "SERVICE_UNAVAILABLE";
    /// <summary>The request timed out; retry.</summary>
    public const string Timeout = "REQUEST_TIMED_OUT";
    /// <summary>No such resource.</summary>
    public const string NotFound = "NOT_FOUND";
    /// <summary>The broker cannot be unregistered while it is unfenced or its session is alive: stop it first.</summary>
    public const string BrokerSessionAlive = "BROKER_SESSION_ALIVE";
    /// <summary>The broker cannot be unregistered while partitions list it as a replica: reassign them first.</summary>
    public const string BrokerHasReplicas = "BROKER_HAS_REPLICAS";

    /// <summary>The group id is not valid.</summary>
    public const string InvalidGroupId = "INVALID_GROUP_ID";
    /// <summary>The group does not exist (no members and no committed offsets).</summary>
    public const string GroupIdNotFound = "GROUP_ID_NOT_FOUND";
    /// <summary>The member id is not a member of the group (it left, or was removed after its session expired): join again with epoch 0.</summary>
    public const string UnknownMemberId = "UNKNOWN_MEMBER_ID";
    /// <summary>The member epoch is not the member's current one: the member was fenced; join again with epoch 0.</summary>
    public const string FencedMemberEpoch = "FENCED_MEMBER_EPOCH";
    /// <summary>An offset commit carries an older member epoch than the member's current one: heartbeat, then commit again.</summary>
    public const string StaleMemberEpoch = "STALE_MEMBER_EPOCH";
    /// <summary>Another member holds this static instance id.</summary>
    public const string UnreleasedInstanceId = "UNRELEASED_INSTANCE_ID";
    /// <summary>The group has as many members as it may.</summary>
    public const string GroupMaxSizeReached = "GROUP_MAX_SIZE_REACHED";
    /// <summary>The subscription's regular expression does not parse.</summary>
    public const string InvalidRegularExpression = "INVALID_REGULAR_EXPRESSION";
    /// <summary>The server-side assignor is not one this service has.</summary>
    public const string UnsupportedAssignor = "UNSUPPORTED_ASSIGNOR";
    /// <summary>The group has members, so it cannot be deleted or reset.</summary>
    public const string NonEmptyGroup = "NON_EMPTY_GROUP";
    /// <summary>The group still consumes the topic, so its offsets cannot be deleted.</summary>
    public const string GroupSubscribedToTopic = "GROUP_SUBSCRIBED_TO_TOPIC";
}
