using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

/// <param name="ValidateOnly">Check everything and answer as if created, writing nothing (Kafka's validateOnly).</param>
public sealed record CreateTopic(
    string Name,
    int? Partitions,
    short? ReplicationFactor,
    IReadOnlyDictionary<string, string>? Configs,
    IReadOnlyList<IReadOnlyList<int>>? Assignment,
    bool ValidateOnly = false);

/// <summary>A topic after a change, and the metadata offset of the change (for validate-only requests, the offset of
/// the image the request was checked against; nothing was written).</summary>
public sealed record TopicChange(TopicRecord Topic, long MetadataOffset);

/// <summary>Keys of topic grains.</summary>
public static class TopicKeys
{
    /// <summary>
    /// A topic's grain key: its name with '.' replaced by '_'. Kafka refuses a topic whose name equals an existing one
    /// after that replacement; keying by it sends colliding names to one grain, whose one-turn-at-a-time refuses the
    /// later one with no race between silos.
    /// </summary>
    public static string For(string name) => name.Replace('.', '_');
}

/// <summary>The topic names that collide on '.'/'_' (key: <see cref="TopicKeys.For"/>); holds at most one live topic.
/// Its turn-at-a-time guarantees one creation per key. Every call names the topic it means.</summary>
[GrainType("topic")]
public interface ITopicGrain : IGrainWithStringKey
{
    Task<TopicChange> CreateAsync(CreateTopic command);

    Task<TopicChange> DeleteAsync(string name);

    Task<TopicChange> AddPartitionsAsync(string name, int totalCount, IReadOnlyList<IReadOnlyList<int>>? assignment, bool validateOnly);

    Task<TopicChange> AlterConfigsAsync(string name, IReadOnlyDictionary<string, string?> changes, bool validateOnly);
}

/// <summary>One topic's config changes in a batch.</summary>
public sealed record TopicConfigChange(string Name, IReadOnlyDictionary<string, string?> Changes);

/// <summary>What one topic's config change did: the change's metadata offset, or the error that refused it.</summary>
public sealed record TopicConfigOutcome(string Name, Guid? TopicId, long? MetadataOffset, string? ErrorCode, string? Message, bool Retryable);

/// <summary>
/// Relays many topics' config changes (a batched IncrementalAlterConfigs) to the topic grains of the silo it runs on
/// (the sender picks a key pinned to the silo that owns them), so a request crosses to another silo once per owning
/// silo. Stateless: each topic grain validates and writes its own change.
/// </summary>
[GrainType("topic-batch")]
public interface ITopicBatchGrain : IGrainWithStringKey
{
    /// <returns>One outcome per change, in the same order.</returns>
    [ReadOnly]
    Task<IReadOnlyList<TopicConfigOutcome>> AlterConfigsAsync(IReadOnlyList<TopicConfigChange> changes, bool validateOnly);
}
