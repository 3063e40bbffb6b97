using OrleansMeta.Runtime;

namespace OrleansMeta.GrainInterfaces;

public sealed record CreateTopic(
    string Name,
    int? Partitions,
    short? ReplicationFactor,
    IReadOnlyDictionary<string, string>? Configs,
    IReadOnlyList<IReadOnlyList<int>>? Assignment);

/// <summary>A topic after a change, and the metadata offset of the change.</summary>
public sealed record TopicChange(TopicRecord Topic, long MetadataOffset);

/// <summary>One topic (key: the topic name). Its turn-at-a-time guarantees one creation per name.</summary>
[GrainType("topic")]
public interface ITopicGrain : IGrainWithStringKey
{
    Task<TopicChange> CreateAsync(CreateTopic command);

    Task<TopicChange> DeleteAsync();

    Task<TopicChange> AddPartitionsAsync(int totalCount, IReadOnlyList<IReadOnlyList<int>>? assignment);

    Task<TopicChange> AlterConfigsAsync(IReadOnlyDictionary<string, string?> changes);
}
