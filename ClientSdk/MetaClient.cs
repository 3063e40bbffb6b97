using System.Globalization;
using System.Text;
using System.Text.Json.Serialization.Metadata;
using OrleansMeta.Client.Internal;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// A client of the Orleans.Meta HTTP API. Thread-safe; create one per application and share it.
/// </summary>
/// <remarks>
/// <para>Any silo serves every request. The client keeps sending to one silo of
/// <see cref="MetaClientOptions.BootstrapUrls"/> and moves on to the next when that one cannot be reached or answers
/// with a retryable error. A consumer group's heartbeats, commits and fetches, a topic's and a partition's writes and a
/// broker's registration and heartbeats go to the silo owning their grain instead once the client knows it (see
/// <see cref="MetaClientOptions.RouteCallsToOwner"/>), and back to the bootstrap silos when a call there fails.</para>
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
/// <para>Reads never go back in time (<see cref="MetaClientOptions.MonotonicReads"/>, on by default): the client keeps
/// the highest metadata offset it has seen in any answer (<see cref="SeenMetadataOffset"/>) and sends it as
/// <c>minOffset</c> with every metadata read, so a read answered by a silo whose image lags waits until that silo has
/// caught up rather than answering from before the client's own writes.</para>
/// <para>Failures throw <see cref="MetaApiException"/>; cancellation through the token throws
/// <see cref="OperationCanceledException"/> at once, without further attempts.</para>
/// </remarks>
public sealed class MetaClient : IMetaClient, IDisposable
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

    /// <inheritdoc />
    public LeaderCache Leaders { get; } = new();

    /// <inheritdoc />
    public long SeenMetadataOffset => _transport.Session.Seen;

    /// <inheritdoc />
    public Task<BrokerRegistrationResponse> RegisterBrokerAsync(int brokerId, BrokerRegistrationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, $"v1/brokers/{Num(brokerId)}/registration",
            MetaTransport.Serialize(request, MetaJsonContext.Default.BrokerRegistrationRequest),
            MetaJsonContext.Default.BrokerRegistrationResponse, cancellationToken, Routes.Broker(brokerId));
    }

    /// <inheritdoc />
    public Task<BrokerHeartbeatResponse> SendBrokerHeartbeatAsync(int brokerId, BrokerHeartbeatRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, $"v1/brokers/{Num(brokerId)}/heartbeat",
            MetaTransport.Serialize(request, MetaJsonContext.Default.BrokerHeartbeatRequest),
            MetaJsonContext.Default.BrokerHeartbeatResponse, cancellationToken, Routes.Broker(brokerId));
    }

    /// <inheritdoc />
    public Task<BrokersResponse> ListBrokersAsync(long? minOffset = null, CancellationToken cancellationToken = default) =>
        ReadAsync("v1/brokers", minOffset, MetaJsonContext.Default.BrokersResponse, cancellationToken);

    /// <inheritdoc />
    public async Task<TopicResponse> CreateTopicAsync(CreateTopicRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, "v1/topics",
            MetaTransport.Serialize(request, MetaJsonContext.Default.CreateTopicRequest),
            MetaJsonContext.Default.TopicResponse, cancellationToken, Routes.Topic(request.Name)).ConfigureAwait(false);
        if (!request.ValidateOnly)
        {
            // A dry run's answer describes a topic that does not exist: nothing to learn leaders from.
            Leaders.Update(response);
        }

        return response;
    }

    /// <inheritdoc />
    public Task<TopicsResponse> ListTopicsAsync(long? minOffset = null, CancellationToken cancellationToken = default) =>
        ReadAsync("v1/topics", minOffset, MetaJsonContext.Default.TopicsResponse, cancellationToken);

    /// <inheritdoc />
    public async Task<TopicResponse> DescribeTopicAsync(string topic, long? minOffset = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var response = await ReadAsync(TopicPath(topic), minOffset, MetaJsonContext.Default.TopicResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public async Task<DeleteTopicResponse> DeleteTopicAsync(string topic, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        var response = await SendAsync(HttpMethod.Delete, TopicPath(topic), null,
            MetaJsonContext.Default.DeleteTopicResponse, cancellationToken, Routes.Topic(topic)).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public async Task<TopicResponse> AddPartitionsAsync(string topic, AddPartitionsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, TopicPath(topic) + "/partitions",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AddPartitionsRequest),
            MetaJsonContext.Default.TopicResponse, cancellationToken, Routes.Topic(topic)).ConfigureAwait(false);
        if (!request.ValidateOnly)
        {
            Leaders.Update(response);
        }

        return response;
    }

    /// <inheritdoc />
    public Task<TopicConfigsResponse> AlterTopicConfigsAsync(string topic, AlterConfigsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Patch, TopicPath(topic) + "/configs",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterConfigsRequest),
            MetaJsonContext.Default.TopicConfigsResponse, cancellationToken, Routes.Topic(topic));
    }

    /// <inheritdoc />
    public Task<AlterTopicsConfigsResponse> AlterTopicConfigsAsync(AlterTopicsConfigsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Sent to any silo: the topics have many owners, and the silo hands each owner its share in one call.
        return SendAsync(HttpMethod.Post, "v1/configs",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterTopicsConfigsRequest),
            MetaJsonContext.Default.AlterTopicsConfigsResponse, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<PartitionResponse> AlterPartitionAsync(string topic, int partition, AlterPartitionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentNullException.ThrowIfNull(request);
        var response = await SendAsync(HttpMethod.Post, $"{TopicPath(topic)}/partitions/{Num(partition)}/isr",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterPartitionRequest),
            MetaJsonContext.Default.PartitionResponse, cancellationToken, Routes.Partition(topic, partition)).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public async Task<AlterPartitionsResponse> AlterPartitionsAsync(int brokerId, AlterPartitionsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        ArgumentNullException.ThrowIfNull(request);
        // Sent to any silo: the partitions have many owners, and the silo hands each owner its share in one call.
        var response = await SendAsync(HttpMethod.Post, $"v1/brokers/{Num(brokerId)}/alter-partition",
            MetaTransport.Serialize(request, MetaJsonContext.Default.AlterPartitionsRequest),
            MetaJsonContext.Default.AlterPartitionsResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public Task<ElectionResponse> ElectLeadersAsync(ElectionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, "v1/elections",
            MetaTransport.Serialize(request, MetaJsonContext.Default.ElectionRequest),
            MetaJsonContext.Default.ElectionResponse, cancellationToken);
    }

    /// <inheritdoc />
    public Task<MetadataResponse> GetMetadataAsync(IEnumerable<string>? topics = null, long? minOffset = null, CancellationToken cancellationToken = default)
        => GetMetadataAsync(topics, minOffset, includeFenced: false, cancellationToken);

    /// <inheritdoc />
    public async Task<MetadataResponse> GetMetadataAsync(IEnumerable<string>? topics, long? minOffset, bool includeFenced, CancellationToken cancellationToken = default)
    {
        var query = new StringBuilder("v1/metadata");
        var separator = '?';
        if (topics is not null)
        {
            query.Append(separator).Append("topics=").AppendJoin(',', topics.Select(t => Uri.EscapeDataString(t ?? throw new ArgumentException("A topic name is null.", nameof(topics)))));
            separator = '&';
        }

        if (includeFenced)
        {
            query.Append(separator).Append("includeFenced=true");
        }

        var response = await ReadAsync(query.ToString(), minOffset, MetaJsonContext.Default.MetadataResponse, cancellationToken).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public Task<MetadataDeltaResponse> GetMetadataDeltaAsync(long sinceOffset, CancellationToken cancellationToken = default)
        => GetMetadataDeltaAsync(sinceOffset, topics: null, minOffset: null, includeFenced: false, cancellationToken);

    /// <inheritdoc />
    public async Task<MetadataDeltaResponse> GetMetadataDeltaAsync(long sinceOffset, IEnumerable<string>? topics, long? minOffset = null, bool includeFenced = false,
        CancellationToken cancellationToken = default)
    {
        var query = new StringBuilder("v1/metadata/delta?sinceOffset=").Append(Num(sinceOffset));
        if (topics is not null)
        {
            query.Append("&topics=").AppendJoin(',', topics.Select(t => Uri.EscapeDataString(t ?? throw new ArgumentException("A topic name is null.", nameof(topics)))));
        }

        if (includeFenced)
        {
            query.Append("&includeFenced=true");
        }

        // The silo waits for sinceOffset anyway: the client's seen offset is added only when it is higher.
        var response = await ReadAsync(query.ToString(), minOffset, MetaJsonContext.Default.MetadataDeltaResponse, cancellationToken,
            floor: sinceOffset).ConfigureAwait(false);
        Leaders.Update(response);
        return response;
    }

    /// <inheritdoc />
    public Task<TopicConfigsResponse> DescribeTopicConfigsAsync(string topic, long? minOffset = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        return ReadAsync(TopicPath(topic) + "/configs", minOffset, MetaJsonContext.Default.TopicConfigsResponse, cancellationToken);
    }

    /// <inheritdoc />
    public Task<BrokerUnregistrationResponse> UnregisterBrokerAsync(int brokerId, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brokerId);
        return SendAsync(HttpMethod.Delete, $"v1/brokers/{Num(brokerId)}", null, MetaJsonContext.Default.BrokerUnregistrationResponse, cancellationToken, Routes.Broker(brokerId));
    }

    /// <inheritdoc />
    public Task<ClusterInfo> GetClusterAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/cluster", null, MetaJsonContext.Default.ClusterInfo, cancellationToken);

    /// <inheritdoc />
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

    /// <inheritdoc />
    public IAsyncEnumerable<WatchEvent> WatchAsync(WatchFilter? filter = null, long? fromOffset = null, CancellationToken cancellationToken = default)
    {
        if (fromOffset is { } from)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(from, 1L, nameof(fromOffset));
        }

        return WatchStream.RunAsync(_transport, filter, fromOffset, cancellationToken);
    }

    /// <inheritdoc />
    public Task<GroupHeartbeatResponse> SendGroupHeartbeatAsync(string groupId, GroupHeartbeatRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, GroupPath(groupId) + "/heartbeat",
            MetaTransport.Serialize(request, MetaJsonContext.Default.GroupHeartbeatRequest), MetaJsonContext.Default.GroupHeartbeatResponse, cancellationToken, Routes.Group(groupId));
    }

    /// <inheritdoc />
    public Task<GroupDescription> DescribeGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        return SendAsync(HttpMethod.Get, GroupPath(groupId), null, MetaJsonContext.Default.GroupDescription, cancellationToken);
    }

    /// <inheritdoc />
    public Task<DeleteGroupResponse> DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        return SendAsync(HttpMethod.Delete, GroupPath(groupId), null, MetaJsonContext.Default.DeleteGroupResponse, cancellationToken);
    }

    /// <inheritdoc />
    public Task<CommitOffsetsResponse> CommitOffsetsAsync(string groupId, CommitOffsetsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Put, GroupPath(groupId) + "/offsets",
            MetaTransport.Serialize(request, MetaJsonContext.Default.CommitOffsetsRequest), MetaJsonContext.Default.CommitOffsetsResponse, cancellationToken, Routes.Group(groupId));
    }

    /// <inheritdoc />
    public Task<GroupOffsetsResponse> FetchOffsetsAsync(string groupId, IEnumerable<string>? topics = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        return SendAsync(HttpMethod.Get, GroupPath(groupId) + "/offsets" + TopicsQuery(topics), null, MetaJsonContext.Default.GroupOffsetsResponse, cancellationToken, Routes.Group(groupId));
    }

    /// <inheritdoc />
    public Task<DeleteGroupOffsetsResponse> DeleteOffsetsAsync(string groupId, IEnumerable<string>? topics = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        return SendAsync(HttpMethod.Delete, GroupPath(groupId) + "/offsets" + TopicsQuery(topics), null, MetaJsonContext.Default.DeleteGroupOffsetsResponse, cancellationToken);
    }

    /// <inheritdoc />
    public Task<GroupOffsetsResponse> ResetOffsetsAsync(string groupId, ResetOffsetsRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentNullException.ThrowIfNull(request);
        return SendAsync(HttpMethod.Post, GroupPath(groupId) + "/offsets/reset",
            MetaTransport.Serialize(request, MetaJsonContext.Default.ResetOffsetsRequest), MetaJsonContext.Default.GroupOffsetsResponse, cancellationToken);
    }

    /// <inheritdoc />
    public Task<GroupsResponse> ListGroupsAsync(IEnumerable<string>? states = null, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "v1/groups" + (states is null ? "" : "?" + string.Join("&", states.Select(s => "state=" + Uri.EscapeDataString(s)))),
            null, MetaJsonContext.Default.GroupsResponse, cancellationToken);

    /// <inheritdoc />
    public Task<LogOffsetsReportResponse> ReportLogOffsetsAsync(int brokerId, LogOffsetsReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        return SendAsync(HttpMethod.Put, $"v1/brokers/{Num(brokerId)}/log-offsets",
            MetaTransport.Serialize(report, MetaJsonContext.Default.LogOffsetsReport), MetaJsonContext.Default.LogOffsetsReportResponse, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<GroupCoordinatorResponse> FindCoordinatorAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        var response = await SendAsync(HttpMethod.Get, GroupPath(groupId) + "/coordinator", null,
            MetaJsonContext.Default.GroupCoordinatorResponse, cancellationToken).ConfigureAwait(false);
        _transport.Owners?.Learn(Routes.Group(groupId), response.Url);
        return response;
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
        JsonTypeInfo<T> responseType, CancellationToken cancellationToken, string? route = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _transport.SendAsync(method, path, body, responseType, cancellationToken, route);
    }

    /// <summary>
    /// A read answered from the silo's metadata image (the endpoints that take <c>minOffset</c>), sent with the caller's
    /// <paramref name="minOffset"/> raised to the offset this client has seen (<see cref="MetaClientOptions.MonotonicReads"/>)
    /// when that is above <paramref name="floor"/>, an offset the silo waits for anyway (a delta's <c>sinceOffset</c>).
    /// </summary>
    private async Task<T> ReadAsync<T>(string path, long? minOffset, JsonTypeInfo<T> responseType,
        CancellationToken cancellationToken, long floor = 0)
    {
        var sent = _transport.Session.MinOffsetFor(minOffset, floor);
        if (sent is { } offset)
        {
            path += (path.Contains('?', StringComparison.Ordinal) ? "&minOffset=" : "?minOffset=") + Num(offset);
        }

        try
        {
            return await SendAsync(HttpMethod.Get, path, null, responseType, cancellationToken).ConfigureAwait(false);
        }
        catch (MetaApiException e) when (e.Code == ErrorCodes.OffsetOutOfRange && sent is { } seen && sent != minOffset)
        {
            // The log's head is below an offset this client saw in an answer: the log lost records since (an
            // asynchronous replica promoted) or started again (a silo with in-memory storage restarted). Waiting cannot
            // help, and every later read would be refused the same way: say so once, and read the log as it is now.
            _transport.Session.Forget(seen);
            throw new MetaApiException(ErrorCodes.OffsetOutOfRange,
                $"This client has seen metadata offset {seen}, which the metadata log no longer holds: the log was rewritten " +
                $"under it. The client forgot that offset; its next reads see the log as it is now. The silo said: {e.Detail}",
                e.StatusCode, isRetryable: true, e.SiloUrl, outcomeUnknown: false, e);
        }
    }

    /// <summary>Test hook: takes <paramref name="coordinator"/> as <paramref name="groupId"/>'s coordinator.</summary>
    internal void LearnCoordinator(string groupId, Uri coordinator) => _transport.Owners?.Learn(Routes.Group(groupId), coordinator.AbsoluteUri);

    /// <summary>The coordinator this client sends <paramref name="groupId"/>'s calls to now, or null (bootstrap silos).</summary>
    internal Uri? CoordinatorOf(string groupId) => OwnerOf(Routes.Group(groupId));

    /// <summary>The silo this client sends <paramref name="route"/>'s calls to now (a key of <see cref="Routes"/>), or null (bootstrap silos).</summary>
    internal Uri? OwnerOf(string route) => _transport.Owners is { } cache && cache.TryGet(route, out var owner) ? owner : null;

    private static string TopicPath(string topic) => "v1/topics/" + Uri.EscapeDataString(topic);

    private static string GroupPath(string groupId) => "v1/groups/" + Uri.EscapeDataString(groupId);

    private static string TopicsQuery(IEnumerable<string>? topics)
        => topics is null ? "" : "?" + string.Join("&", topics.Select(t => "topic=" + Uri.EscapeDataString(t)));

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);
}
