using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// Overloads of <see cref="IMetaClient"/> operations that take the <see cref="CancellationToken"/> right after the
/// required parameters, so that it can be passed positionally (<c>ListTopicsAsync(ct)</c>) without naming it, and the
/// entry point of <see cref="BrokerSession"/>.
/// </summary>
public static class MetaClientExtensions
{
    /// <summary>Lists the registered brokers (<c>GET /v1/brokers</c>) at whatever offset the answering silo has reached.</summary>
    /// <param name="client">The client.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The brokers and the metadata offset the answer reflects.</returns>
    public static Task<BrokersResponse> ListBrokersAsync(this IMetaClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.ListBrokersAsync(minOffset: null, cancellationToken);
    }

    /// <summary>Lists the topics (<c>GET /v1/topics</c>) at whatever offset the answering silo has reached.</summary>
    /// <param name="client">The client.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Every topic and the metadata offset the answer reflects.</returns>
    public static Task<TopicsResponse> ListTopicsAsync(this IMetaClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.ListTopicsAsync(minOffset: null, cancellationToken);
    }

    /// <summary>Fetches every committed offset of a group (<c>GET /v1/groups/{groupId}/offsets</c>).</summary>
    /// <param name="client">The client.</param>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The committed offsets.</returns>
    public static Task<GroupOffsetsResponse> FetchOffsetsAsync(this IMetaClient client, string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.FetchOffsetsAsync(groupId, topics: null, cancellationToken);
    }

    /// <summary>Lists every consumer group with its state and lag (<c>GET /v1/groups</c>).</summary>
    /// <param name="client">The client.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The groups by id, and the silos that did not answer, if any.</returns>
    public static Task<GroupsResponse> ListGroupsAsync(this IMetaClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.ListGroupsAsync(states: null, cancellationToken);
    }

    /// <summary>Deletes every committed offset of an empty group (<c>DELETE /v1/groups/{groupId}/offsets</c>).</summary>
    /// <param name="client">The client.</param>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many partitions' offsets were deleted.</returns>
    public static Task<DeleteGroupOffsetsResponse> DeleteOffsetsAsync(this IMetaClient client, string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.DeleteOffsetsAsync(groupId, topics: null, cancellationToken);
    }

    /// <summary>Describes a topic's configs (<c>GET /v1/topics/{name}/configs</c>) at whatever offset the answering silo has reached.</summary>
    /// <param name="client">The client.</param>
    /// <param name="topic">The topic name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Every config with its value, whether it is the default, and its source.</returns>
    public static Task<TopicConfigsResponse> DescribeTopicConfigsAsync(this IMetaClient client, string topic, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.DescribeTopicConfigsAsync(topic, minOffset: null, cancellationToken);
    }

    /// <summary>Describes a topic (<c>GET /v1/topics/{name}</c>) at whatever offset the answering silo has reached.</summary>
    /// <param name="client">The client.</param>
    /// <param name="topic">The topic name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The topic's configs and partitions; UNKNOWN_TOPIC_OR_PARTITION (404) when it does not exist.</returns>
    public static Task<TopicResponse> DescribeTopicAsync(this IMetaClient client, string topic, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.DescribeTopicAsync(topic, minOffset: null, cancellationToken);
    }

    /// <summary>Reads the metadata of every topic (<c>GET /v1/metadata</c>) and feeds <see cref="IMetaClient.Leaders"/>.</summary>
    /// <param name="client">The client.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata at the offset the answering silo has reached.</returns>
    public static Task<MetadataResponse> GetMetadataAsync(this IMetaClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.GetMetadataAsync(topics: null, minOffset: null, cancellationToken);
    }

    /// <summary>Reads the metadata of some topics (<c>GET /v1/metadata?topics=...</c>) and feeds
    /// <see cref="IMetaClient.Leaders"/>.</summary>
    /// <param name="client">The client.</param>
    /// <param name="topics">The topics to describe; null for every topic.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The metadata at the offset the answering silo has reached.</returns>
    public static Task<MetadataResponse> GetMetadataAsync(this IMetaClient client, IEnumerable<string>? topics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.GetMetadataAsync(topics, minOffset: null, cancellationToken);
    }

    /// <summary>Starts a <see cref="BrokerSession"/> with default session options: registers the broker with a new
    /// incarnation id, then heartbeats in the background. See <see cref="BrokerSession.StartAsync"/>.</summary>
    /// <param name="client">The client the session sends through; it must outlive the session.</param>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="listeners">Where the broker serves clients; at least one.</param>
    /// <param name="rack">The broker's rack, or null when it has none.</param>
    /// <param name="cancellationToken">Cancels the first registration (not the session: stop it with
    /// <see cref="BrokerSession.StopAsync"/> or <see cref="BrokerSession.ShutDownAsync"/>).</param>
    /// <returns>The session, registered.</returns>
    public static Task<BrokerSession> StartBrokerSessionAsync(
        this IMetaClient client, int brokerId, IReadOnlyList<BrokerListener> listeners, string? rack, CancellationToken cancellationToken = default) =>
        StartBrokerSessionAsync(client, brokerId, listeners, rack, options: null, cancellationToken);

    /// <summary>Starts a <see cref="BrokerSession"/>: registers the broker with a new incarnation id, then heartbeats in
    /// the background. See <see cref="BrokerSession.StartAsync"/>.</summary>
    /// <param name="client">The client the session sends through; it must outlive the session.</param>
    /// <param name="brokerId">The broker id (not negative).</param>
    /// <param name="listeners">Where the broker serves clients; at least one.</param>
    /// <param name="rack">The broker's rack, or null when it has none.</param>
    /// <param name="options">The session's settings; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the first registration (not the session).</param>
    /// <returns>The session, registered.</returns>
    public static async Task<BrokerSession> StartBrokerSessionAsync(
        this IMetaClient client, int brokerId, IReadOnlyList<BrokerListener> listeners, string? rack, BrokerSessionOptions? options,
        CancellationToken cancellationToken = default)
    {
        var session = new BrokerSession(client, brokerId, listeners, rack, options);
        try
        {
            await session.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return session;
    }

    /// <summary>Watches every metadata change, starting with a snapshot of the current state (see
    /// <see cref="IMetaClient.WatchAsync"/>).</summary>
    /// <param name="client">The client.</param>
    /// <param name="cancellationToken">Ends the watch.</param>
    /// <returns>Snapshot events, then every record after the snapshot, across reconnections.</returns>
    public static IAsyncEnumerable<WatchEvent> WatchAsync(this IMetaClient client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.WatchAsync(filter: null, fromOffset: null, cancellationToken);
    }
}
