using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// The operations of the Orleans.Meta HTTP API, as <see cref="MetaClient"/> implements them. Depend on this interface
/// (it is what <c>services.AddMetaClient(...)</c> registers) so that code calling the service can be tested without one.
/// </summary>
/// <remarks>Every method takes a <see cref="CancellationToken"/> last. Methods with optional parameters before it have
/// overloads in <see cref="MetaClientExtensions"/> that take the token right after the required ones, e.g.
/// <c>ListTopicsAsync(cancellationToken)</c>. See <see cref="MetaClient"/> for which failures are retried.</remarks>
public interface IMetaClient
{
    /// <summary>The partition leaders this client has seen in metadata, topic and partition answers.</summary>
    LeaderCache Leaders { get; }

    /// <summary>The highest metadata log offset this client has seen in any answer: a write's offset, the offset a read
    /// was answered at, or a watch event's; 0 before the first. With <see cref="MetaClientOptions.MonotonicReads"/> on,
    /// every metadata read is sent with at least this <c>minOffset</c>. Tracked with the option off too.</summary>
    long SeenMetadataOffset { get; }

    /// <summary>Registers a broker incarnation (<c>POST /v1/brokers/{id}/registration</c>). Not resent after a timeout;
    /// registering the same incarnation id again is safe and answers with the same epoch.</summary>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="request">The incarnation id, listeners and rack.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The broker epoch that the incarnation's later requests carry.</returns>
    Task<BrokerRegistrationResponse> RegisterBrokerAsync(int brokerId, BrokerRegistrationRequest request, CancellationToken cancellationToken = default);

    /// <summary>Sends a broker heartbeat (<c>POST /v1/brokers/{id}/heartbeat</c>). Not resent after a timeout: send the
    /// next heartbeat instead. <see cref="BrokerSession"/> does this on schedule.</summary>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="request">The broker epoch and the metadata offset the broker has applied.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the broker is fenced, caught up, and may shut down.</returns>
    Task<BrokerHeartbeatResponse> SendBrokerHeartbeatAsync(int brokerId, BrokerHeartbeatRequest request, CancellationToken cancellationToken = default);

    /// <summary>Lists the registered brokers (<c>GET /v1/brokers</c>).</summary>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset (read your own
    /// writes); OFFSET_NOT_AVAILABLE (retried) if it does not in time.
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The brokers and the metadata offset the answer reflects.</returns>
    Task<BrokersResponse> ListBrokersAsync(long? minOffset = null, CancellationToken cancellationToken = default);

    /// <summary>Creates a topic (<c>POST /v1/topics</c>). Not resent after a timeout: a resend could fail with
    /// TOPIC_ALREADY_EXISTS although this call created it.</summary>
    /// <param name="request">The name, partitions, replication factor, configs or explicit assignment.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The created topic and the metadata offset of its creation.</returns>
    Task<TopicResponse> CreateTopicAsync(CreateTopicRequest request, CancellationToken cancellationToken = default);

    /// <summary>Lists the topics (<c>GET /v1/topics</c>).</summary>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Every topic and the metadata offset the answer reflects.</returns>
    Task<TopicsResponse> ListTopicsAsync(long? minOffset = null, CancellationToken cancellationToken = default);

    /// <summary>Describes a topic (<c>GET /v1/topics/{name}</c>).</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic's configs and partitions; UNKNOWN_TOPIC_OR_PARTITION (404) when it does not exist.</returns>
    Task<TopicResponse> DescribeTopicAsync(string topic, long? minOffset = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes a topic (<c>DELETE /v1/topics/{name}</c>). Resent after a timeout like a read; a resend after a
    /// delete that was applied answers UNKNOWN_TOPIC_OR_PARTITION.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The deleted topic's id and the metadata offset of the deletion.</returns>
    Task<DeleteTopicResponse> DeleteTopicAsync(string topic, CancellationToken cancellationToken = default);

    /// <summary>Grows a topic to more partitions (<c>POST /v1/topics/{name}/partitions</c>). Not resent after a timeout.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="request">The new total partition count and, optionally, the replicas of the new partitions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic after the change.</returns>
    Task<TopicResponse> AddPartitionsAsync(string topic, AddPartitionsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Sets or removes topic configs (<c>PATCH /v1/topics/{name}/configs</c>). Not resent after a timeout.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="request">Keys to set; a null value removes the key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic's configs after the change, with the change's metadata offset.</returns>
    Task<TopicConfigsResponse> AlterTopicConfigsAsync(string topic, AlterConfigsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Changes the configs of many topics in one request (<c>POST /v1/configs</c>, Kafka's IncrementalAlterConfigs).
    /// Each topic is validated and written on its own and gets its own outcome. Not resent after a timeout: read the
    /// topics' configs to see what was applied.</summary>
    /// <param name="request">Per topic, the keys to set (a null value removes the key), and validateOnly.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One result per topic, in the order of the request.</returns>
    Task<AlterTopicsConfigsResponse> AlterTopicConfigsAsync(AlterTopicsConfigsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Proposes a new ISR as the partition leader (<c>POST /v1/topics/{name}/partitions/{p}/isr</c>, Kafka's
    /// AlterPartition). Not resent after a timeout: a resend of an applied change fails with INVALID_UPDATE_VERSION.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index (not negative).</param>
    /// <param name="request">The leader, its epochs, the partition epoch the change is based on, and the new ISR.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The partition after the change.</returns>
    Task<PartitionResponse> AlterPartitionAsync(string topic, int partition, AlterPartitionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Proposes new ISRs for many partitions at once, as their leader (<c>POST /v1/brokers/{id}/alter-partition</c>,
    /// Kafka's AlterPartition as brokers send it). The broker epoch is checked for the whole request; each partition then
    /// gets its own outcome (its state after the change, or an error name). Not resent after a timeout: read the
    /// partitions' metadata to see what was applied.</summary>
    /// <param name="brokerId">The sending broker, the leader of every partition named.</param>
    /// <param name="request">The broker epoch and, per topic, each partition's epochs and new ISR (at most 10,000 partitions).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One result per partition, in the order of the request.</returns>
    Task<AlterPartitionsResponse> AlterPartitionsAsync(int brokerId, AlterPartitionsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Runs leader elections (<c>POST /v1/elections</c>). Not resent after a timeout. The results are not fed
    /// to <see cref="Leaders"/>: they carry no topic id.</summary>
    /// <param name="request">The election type and the partitions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The outcome per partition.</returns>
    Task<ElectionResponse> ElectLeadersAsync(ElectionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Reads brokers, partition leaders and the controller (<c>GET /v1/metadata</c>) and feeds
    /// <see cref="Leaders"/>.</summary>
    /// <param name="topics">The topics to describe; null for every topic. A requested topic that does not exist comes
    /// back with error code UNKNOWN_TOPIC_OR_PARTITION.</param>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata at the offset the answering silo has reached.</returns>
    Task<MetadataResponse> GetMetadataAsync(IEnumerable<string>? topics = null, long? minOffset = null, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="GetMetadataAsync(IEnumerable{string}?, long?, CancellationToken)"/>, choosing whether fenced brokers are listed.</summary>
    /// <param name="topics">Topics to describe; null for all.</param>
    /// <param name="minOffset">Wait until the answering silo's image holds this offset (read your own writes).
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="includeFenced">List fenced brokers too (by default the answer lists unfenced brokers only, as Kafka's does).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    Task<MetadataResponse> GetMetadataAsync(IEnumerable<string>? topics, long? minOffset, bool includeFenced, CancellationToken cancellationToken = default);

    /// <summary>
    /// What changed in the Metadata answer after <paramref name="sinceOffset"/> (<c>GET /v1/metadata/delta</c>): brokers
    /// changed or removed, topics created or with changed partitions (only those partitions), topics deleted. Apply it to
    /// the Metadata answer at <paramref name="sinceOffset"/> with <see cref="MetadataView.Apply"/>; when the answering
    /// silo cannot answer that far back the answer's <see cref="MetadataDeltaResponse.Full"/> holds the whole Metadata
    /// answer instead. Feeds <see cref="Leaders"/>.
    /// </summary>
    /// <param name="sinceOffset">The offset the caller's view is at (a Metadata answer's or a previous delta's <c>metadataOffset</c>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The changes up to the offset the answering silo has reached (never below <paramref name="sinceOffset"/>).</returns>
    Task<MetadataDeltaResponse> GetMetadataDeltaAsync(long sinceOffset, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="GetMetadataDeltaAsync(long, CancellationToken)"/>, for some topics, reading your own writes,
    /// choosing the shape of a full answer.</summary>
    /// <param name="sinceOffset">The offset the caller's view is at.</param>
    /// <param name="topics">The topics to report on; null for every topic. Unknown names are left out.</param>
    /// <param name="minOffset">Wait until the answering silo's image holds this offset (read your own writes).
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="includeFenced">List fenced brokers in a full answer (a delta always reports fenced brokers' changes).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<MetadataDeltaResponse> GetMetadataDeltaAsync(long sinceOffset, IEnumerable<string>? topics, long? minOffset = null, bool includeFenced = false,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// <c>GET /v1/topics/{name}/configs</c> (Kafka's DescribeConfigs): every config the topic has, with its value, whether
    /// it is the default, and its source.
    /// </summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.
    /// Raised to <see cref="SeenMetadataOffset"/> when lower, unless <see cref="MetaClientOptions.MonotonicReads"/> is off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<TopicConfigsResponse> DescribeTopicConfigsAsync(string topic, long? minOffset = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// <c>DELETE /v1/brokers/{id}</c> (Kafka's UnregisterBroker): removes a broker that is gone for good. Refused with
    /// BROKER_SESSION_ALIVE while it is unfenced or its session is alive, and with BROKER_HAS_REPLICAS while partitions
    /// still list it (reassign them first).
    /// </summary>
    Task<BrokerUnregistrationResponse> UnregisterBrokerAsync(int brokerId, CancellationToken cancellationToken = default);

    /// <summary>Reads the cluster id, the silo membership the answering silo sees, and the controller
    /// (<c>GET /v1/cluster</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The cluster as the answering silo sees it.</returns>
    Task<ClusterInfo> GetClusterAsync(CancellationToken cancellationToken = default);

    /// <summary>The leader of a partition: from <see cref="Leaders"/> when it holds one, else from a metadata read of
    /// the topic.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index (not negative).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The leader; <see cref="PartitionLeader.BrokerId"/> is -1 when the partition is offline.</returns>
    /// <exception cref="MetaApiException">UNKNOWN_TOPIC_OR_PARTITION when the topic or partition does not exist, or
    /// the metadata read failed.</exception>
    ValueTask<PartitionLeader> GetLeaderAsync(string topic, int partition, CancellationToken cancellationToken = default);

    /// <summary>Sends a consumer group member's heartbeat (<c>POST /v1/groups/{groupId}/heartbeat</c>, KIP-848). Not
    /// resent after a timeout: send the next heartbeat instead. <see cref="GroupConsumer"/> does this on schedule.</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="request">The member id, epoch (0 to join, -1 to leave), subscription and owned partitions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The member's epoch and every partition it may own now.</returns>
    Task<GroupHeartbeatResponse> SendGroupHeartbeatAsync(string groupId, GroupHeartbeatRequest request, CancellationToken cancellationToken = default);

    /// <summary>Describes a consumer group (<c>GET /v1/groups/{groupId}</c>).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>State, epochs, members with assignments, committed offsets; GROUP_ID_NOT_FOUND (404) when it does not exist.</returns>
    Task<GroupDescription> DescribeGroupAsync(string groupId, CancellationToken cancellationToken = default);

    /// <summary>Deletes an empty group and its offsets (<c>DELETE /v1/groups/{groupId}</c>).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The deleted group; NON_EMPTY_GROUP (409) while it has members.</returns>
    Task<DeleteGroupResponse> DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default);

    /// <summary>Commits offsets (<c>PUT /v1/groups/{groupId}/offsets</c>), durable when answered. Resent after a timeout
    /// (setting the same offsets twice is harmless).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="request">The member id and epoch (or no member id and epoch -1 for an empty group) and the offsets.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many partitions were committed; STALE_MEMBER_EPOCH (409) after the member's epoch moved on.</returns>
    Task<CommitOffsetsResponse> CommitOffsetsAsync(string groupId, CommitOffsetsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Fetches committed offsets (<c>GET /v1/groups/{groupId}/offsets</c>).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="topics">Only these topics' offsets, or all when null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The committed offsets.</returns>
    Task<GroupOffsetsResponse> FetchOffsetsAsync(string groupId, IEnumerable<string>? topics = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes committed offsets (<c>DELETE /v1/groups/{groupId}/offsets</c>).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="topics">The topics whose offsets go, or all of an empty group's when null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many partitions' offsets were deleted; GROUP_SUBSCRIBED_TO_TOPIC (409) for a topic the group consumes.</returns>
    Task<DeleteGroupOffsetsResponse> DeleteOffsetsAsync(string groupId, IEnumerable<string>? topics = null, CancellationToken cancellationToken = default);

    /// <summary>Resets an empty group's offsets (<c>POST /v1/groups/{groupId}/offsets/reset</c>).</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="request">The offsets to set, and whether to only show them (dryRun).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The offsets written (or that would be).</returns>
    Task<GroupOffsetsResponse> ResetOffsetsAsync(string groupId, ResetOffsetsRequest request, CancellationToken cancellationToken = default);

    /// <summary>Lists every consumer group with its state and lag (<c>GET /v1/groups</c>), gathered from every silo's memory.</summary>
    /// <param name="states">Only groups in these states (<c>empty</c>, <c>assigning</c>, <c>reconciling</c>, <c>stable</c>), or all when null.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The groups by id, and the silos that did not answer (their groups are missing) if any.</returns>
    Task<GroupsResponse> ListGroupsAsync(IEnumerable<string>? states = null, CancellationToken cancellationToken = default);

    /// <summary>Reports the log start and end offsets of partitions a broker leads (<c>PUT /v1/brokers/{id}/log-offsets</c>),
    /// for consumer-group lag and resets to earliest/latest. Resent after a timeout (a report sets values).</summary>
    /// <param name="brokerId">The reporting broker.</param>
    /// <param name="report">Its broker epoch and the partitions' offsets, by topic.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many partitions were taken, and how many skipped because the broker does not lead them or they do not exist.</returns>
    Task<LogOffsetsReportResponse> ReportLogOffsetsAsync(int brokerId, LogOffsetsReport report, CancellationToken cancellationToken = default);

    /// <summary>Finds the silo that coordinates a consumer group (<c>GET /v1/groups/{groupId}/coordinator</c>, Kafka's
    /// FindCoordinator). With <see cref="MetaClientOptions.RouteCallsToOwner"/> on, the group's heartbeats,
    /// commits and fetches go there from now on; the client also learns the coordinator without this call, from the
    /// first group call a silo forwards.</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The coordinator's public URL (null while it runs a version that does not advertise one), incarnation and
    /// name, and the membership view version the answer was computed on.</returns>
    Task<GroupCoordinatorResponse> FindCoordinatorAsync(string groupId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Watches the metadata log (<c>GET /v1/watch</c>, Server-Sent Events): every committed change that passes
    /// <paramref name="filter"/>, in offset order. After a disconnect, or when the silo it reads from dies, it reconnects
    /// (to the next bootstrap silo, with backoff) and resumes after the last event it yielded: no record is missed and
    /// none comes twice. It ends only when <paramref name="cancellationToken"/> is cancelled or a silo refuses the
    /// request itself (bad parameters: <see cref="MetaApiException"/>).
    /// </summary>
    /// <param name="filter">Which records to deliver; null for all.</param>
    /// <param name="fromOffset">The first log offset wanted. Null starts with a snapshot of the current state for the
    /// filter (<see cref="WatchEventKinds.SnapshotStart"/>, <see cref="WatchEventKinds.Snapshot"/> items,
    /// <see cref="WatchEventKinds.SnapshotEnd"/> naming its offset) and goes on with the records after it. An offset the
    /// log no longer holds is answered the same way, marked by the snapshot events, so a reader always knows.</param>
    /// <param name="cancellationToken">Ends the watch.</param>
    /// <returns>Records, snapshot events and progress markers (<see cref="WatchEvent.Kind"/>).</returns>
    IAsyncEnumerable<WatchEvent> WatchAsync(WatchFilter? filter = null, long? fromOffset = null, CancellationToken cancellationToken = default);
}
