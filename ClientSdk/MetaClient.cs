using System.Globalization;
using System.Text;
using OrleansMeta.Client.Internal;
using OrleansMeta.Client.Models;

namespace OrleansMeta.Client;

/// <summary>
/// A client of the Orleans.Meta HTTP API. Thread-safe; create one per application and share it.
/// </summary>
/// <remarks>
/// <para>Any silo serves every request. The client keeps sending to one silo of
/// <see cref="MetaClientOptions.BootstrapUrls"/> and moves on to the next when that one cannot be reached or answers
/// with a retryable error.</para>
/// <para>Retries (up to <see cref="MetaClientOptions.MaxAttempts"/> attempts, exponential backoff with jitter) happen
/// only for failures the same request may survive: the silo could not be reached (connection refused, DNS, TLS), HTTP
/// 429, 502, 503 and 504, and problem answers with <c>retryable: true</c>. Other errors (400, 404, 409, 413, ...) are
/// never retried.</para>
/// <para>Writes sent with POST or PATCH are not idempotent (creating a topic twice fails with TOPIC_ALREADY_EXISTS, an
/// ISR change is a compare-and-set). When such a write reached a silo but no answer came back (the attempt timed out,
/// the connection broke mid-request, or a gateway answered 502 or 504), the client does not resend it: it throws
/// <see cref="MetaApiException"/> with <see cref="MetaApiException.IsRetryable"/> and
/// <see cref="MetaApiException.OutcomeUnknown"/> true, code <see cref="ErrorCodes.Timeout"/> for a timeout. Read the
/// state before deciding to resend. Reads (GET) and deletes are resent after such failures.</para>
/// <para>Failures throw <see cref="MetaApiException"/>; cancellation through the token throws
/// <see cref="OperationCanceledException"/> at once, without further attempts.</para>
/// </remarks>
public sealed class MetaClient : IDisposable
{
    private readonly MetaTransport _transport;
    private int _disposed;

    /// <summary>Creates a client.</summary>
    /// <param name="options">Settings; copied, so later changes have no effect.</param>
    /// <exception cref="ArgumentException">The options are not valid; the message lists every problem.</exception>
    public MetaClient(MetaClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(
                $"The MetaClient options are not valid:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}",
                nameof(options));
        }

        _transport = new MetaTransport(options);
    }

    /// <summary>The partition leaders this client has seen in metadata, topic and partition answers.</summary>
    public LeaderCache Leaders { get; } = new();

    /// <summary>Registers a broker incarnation (<c>POST /v1/brokers/{id}/registration</c>). Not resent after a timeout.</summary>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="request">The incarnation id, listeners and rack.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The broker epoch that the incarnation's later requests carry.</returns>
    public Task<BrokerRegistrationResponse> RegisterBrokerAsync(int brokerId, BrokerRegistrationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, $"v1/brokers/{Num(brokerId)}/registration",
            MetaTransport.Serialize(request, MetaJsonContext.Default.BrokerRegistrationRequest),
            MetaJsonContext.Default.BrokerRegistrationResponse, cancellationToken);
    }

    /// <summary>Sends a broker heartbeat (<c>POST /v1/brokers/{id}/heartbeat</c>). Not resent after a timeout: send the
    /// next heartbeat instead.</summary>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="request">The broker epoch and the metadata offset the broker has applied.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the broker is fenced, caught up, and may shut down.</returns>
    public Task<BrokerHeartbeatResponse> SendBrokerHeartbeatAsync(int brokerId, BrokerHeartbeatRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, $"v1/brokers/{Num(brokerId)}/heartbeat",
            MetaTransport.Serialize(request, MetaJsonContext.Default.BrokerHeartbeatRequest),
            MetaJsonContext.Default.BrokerHeartbeatResponse, cancellationToken);
    }

    /// <summary>Lists the registered brokers (<c>GET /v1/brokers</c>).</summary>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset (read your own
    /// writes); OFFSET_NOT_AVAILABLE (retried) if it does not in time.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The brokers and the metadata offset the answer reflects.</returns>
    public Task<BrokersResponse> ListBrokersAsync(long? minOffset = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/brokers" + Query(minOffset), null, MetaJsonContext.Default.BrokersResponse, cancellationToken);

    /// <summary>Creates a topic (<c>POST /v1/topics</c>). Not resent after a timeout: a resend could fail with
    /// TOPIC_ALREADY_EXISTS although this call created it.</summary>
    /// <param name="request">The name, partitions, replication factor, configs or explicit assignment.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The created topic and the metadata offset of its creation.</returns>
    public async Task<TopicResponse> CreateTopicAsync(CreateTopicRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, "v1/topics",
            MetaTransport.Serialize(request, MetaJsonContext.Default.CreateTopicRequest),
            MetaJsonContext.Default.TopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Lists the topics (<c>GET /v1/topics</c>).</summary>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Every topic and the metadata offset the answer reflects.</returns>
    public Task<TopicsResponse> ListTopicsAsync(long? minOffset = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/topics" + Query(minOffset), null, MetaJsonContext.Default.TopicsResponse, cancellationToken);

    /// <summary>Describes a topic (<c>GET /v1/topics/{name}</c>).</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic's configs and partitions; UNKNOWN_TOPIC_OR_PARTITION (404) when it does not exist.</returns>
    public async Task<TopicResponse> DescribeTopicAsync(string topic, long? minOffset = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var response = await SendAsync(HttpMethod.Get, TopicPath(topic) + Query(minOffset), null,
            MetaJsonContext.Default.TopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Deletes a topic (<c>DELETE /v1/topics/{name}</c>). Resent after a timeout like a read; a resend after a
    /// delete that was applied answers UNKNOWN_TOPIC_OR_PARTITION.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The deleted topic's id and the metadata offset of the deletion.</returns>
    public async Task<DeleteTopicResponse> DeleteTopicAsync(string topic, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var response = await SendAsync(HttpMethod.Delete, TopicPath(topic), null,
            MetaJsonContext.Default.DeleteTopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Grows a topic to more partitions (<c>POST /v1/topics/{name}/partitions</c>). Not resent after a timeout.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="request">The new total partition count and, optionally, the replicas of the new partitions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic after the change.</returns>
    public async Task<TopicResponse> AddPartitionsAsync(string topic, AddPartitionsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, TopicPath(topic) + "/partitions",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AddPartitionsRequest),
            MetaJsonContext.Default.TopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Sets or removes topic configs (<c>PATCH /v1/topics/{name}/configs</c>). Not resent after a timeout.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="request">Keys to set; a null value removes the key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic after the change.</returns>
    public async Task<TopicResponse> AlterTopicConfigsAsync(string topic, AlterConfigsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Patch, TopicPath(topic) + "/configs",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterConfigsRequest),
            MetaJsonContext.Default.TopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Proposes a new ISR as the partition leader (<c>POST /v1/topics/{name}/partitions/{p}/isr</c>, Kafka's
    /// AlterPartition). Not resent after a timeout: a resend of an applied change fails with INVALID_UPDATE_VERSION.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index (not negative).</param>
    /// <param name="request">The leader, its epochs, the partition epoch the change is based on, and the new ISR.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The partition after the change.</returns>
    public async Task<PartitionResponse> AlterPartitionAsync(string topic, int partition, AlterPartitionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, $"{TopicPath(topic)}/partitions/{Num(partition)}/isr",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterPartitionRequest),
            MetaJsonContext.Default.PartitionResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Runs leader elections (<c>POST /v1/elections</c>). Not resent after a timeout. The results are not fed
    /// to <see cref="Leaders"/>: they carry no topic id.</summary>
    /// <param name="request">The election type and the partitions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The outcome per partition.</returns>
    public Task<ElectionResponse> ElectLeadersAsync(ElectionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, "v1/elections",
            MetaTransport.Serialize(request, MetaJsonContext.Default.ElectionRequest),
            MetaJsonContext.Default.ElectionResponse, cancellationToken);
    }

    /// <summary>Reads brokers, partition leaders and the controller (<c>GET /v1/metadata</c>) and feeds
    /// <see cref="Leaders"/>.</summary>
    /// <param name="topics">The topics to describe; null for every topic. A requested topic that does not exist comes
    /// back with error code UNKNOWN_TOPIC_OR_PARTITION.</param>
    /// <param name="minOffset">When given, the silo answers once its metadata has reached this offset.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata at the offset the answering silo has reached.</returns>
    public async Task<MetadataResponse> GetMetadataAsync(IEnumerable<string>? topics = null, long? minOffset = null, CancellationToken cancellationToken = default)
    {
        var query = new StringBuilder("v1/metadata");
        if (topics is not null)
        {
            query.Append("?topics=").AppendJoin(',', topics.Select(t => Uri.EscapeDataString(t ?? throw new ArgumentException("A topic name is null.", nameof(topics)))));
        }

        if (minOffset is { } offset)
        {
            query.Append(topics is null ? '?' : '&').Append("minOffset=").Append(Num(offset));
        }

        var response = await SendAsync(HttpMethod.Get, query.ToString(), null,
            MetaJsonContext.Default.MetadataResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <summary>Reads the cluster id, the silo membership the answering silo sees, and the controller
    /// (<c>GET /v1/cluster</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The cluster as the answering silo sees it.</returns>
    public Task<ClusterInfo> GetClusterAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/cluster", null, MetaJsonContext.Default.ClusterInfo, cancellationToken);

    /// <summary>The leader of a partition: from <see cref="Leaders"/> when it holds one, else from a metadata read of
    /// the topic.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index (not negative).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The leader; <see cref="PartitionLeader.BrokerId"/> is -1 when the partition is offline.</returns>
    /// <exception cref="MetaApiException">UNKNOWN_TOPIC_OR_PARTITION when the topic or partition does not exist, or
    /// the metadata read failed.</exception>
    public async ValueTask<PartitionLeader> GetLeaderAsync(string topic, int partition, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        if (Leaders.TryGetLeader(topic, partition, out var leader, out var epoch))
        {
            return new PartitionLeader(leader, epoch);
        }

        var metadata = await GetMetadataAsync([topic], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (Leaders.TryGetLeader(topic, partition, out leader, out epoch))
        {
            return new PartitionLeader(leader, epoch); // The cache may hold a newer epoch than this answer.
        }

        var found = metadata.Topics.FirstOrDefault(t => t.Name == topic && t.ErrorCode is null)?
            .Partitions.FirstOrDefault(p => p.Partition == partition);
        return found is not null
            ? new PartitionLeader(found.Leader, found.LeaderEpoch)
            : throw new MetaApiException(ErrorCodes.UnknownTopicOrPartition,
                $"The metadata at offset {metadata.MetadataOffset} has no partition {partition} of topic '{topic}'.");
    }

    /// <summary>Releases the connections the client owns. An injected handler or HttpClient is left to its owner.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _transport.Dispose();
        }
    }

    private Task<T> SendAsync<T>(HttpMethod method, string path, byte[]? body,
        System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> responseType, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _transport.SendAsync(method, path, body, responseType, cancellationToken);
    }

    private static string TopicPath(string topic) => "v1/topics/" + Uri.EscapeDataString(topic);

    private static string Query(long? minOffset) => minOffset is { } offset ? "?minOffset=" + Num(offset) : "";

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);
}
