using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// Which metadata log records a watch delivers (<see cref="IMetaClient.WatchAsync"/>, <c>GET /v1/watch</c>). Empty
/// (the default) delivers every record.
/// </summary>
/// <remarks>
/// <para><see cref="Kinds"/> keeps records of those types only. <see cref="Topics"/>, <see cref="TopicPrefix"/>,
/// <see cref="Brokers"/> and <see cref="Groups"/> name entities: when any of them is set, a record passes if it concerns
/// one of them (a topic or partition record of a named topic, or of a topic whose name starts with the prefix; a broker
/// record of a named broker, or a topic or partition record that places a replica on one; a <c>group</c> or
/// <c>group-member</c> record of a named consumer group). Controller records pass only when no entity is named. Both
/// conditions must hold.</para>
/// <para>Group records carry <see cref="GroupRecord"/> and <see cref="GroupMemberRecord"/>: membership, epochs and
/// assignments. Committed offsets are not in the metadata log.</para>
/// </remarks>
public sealed record WatchFilter
{
    /// <summary>Topic names; null or empty for no topic condition.</summary>
    public IReadOnlyList<string>? Topics { get; init; }

    /// <summary>A topic name prefix; null for none.</summary>
    public string? TopicPrefix { get; init; }

    /// <summary>Broker ids; null or empty for no broker condition.</summary>
    public IReadOnlyList<int>? Brokers { get; init; }

    /// <summary>Consumer group ids; null or empty for no group condition.</summary>
    public IReadOnlyList<string>? Groups { get; init; }

    /// <summary>Record types to deliver (<c>broker</c>, <c>topic</c>, <c>partition</c>, <c>controller</c>, <c>group</c>,
    /// <c>group-member</c>); null or empty for all.</summary>
    public IReadOnlyList<string>? Kinds { get; init; }
}
