using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// Keeps a client-side Metadata answer current with deltas (<see cref="IMetaClient.GetMetadataDeltaAsync(long, CancellationToken)"/>):
/// the Metadata answer at N with the delta since N applied is the Metadata answer at the delta's offset.
/// </summary>
public static class MetadataView
{
    /// <summary>
    /// The Metadata answer at <paramref name="delta"/>'s offset: <paramref name="view"/> with the delta applied, or the
    /// delta's full answer when it carries one. <paramref name="view"/> is not changed.
    /// </summary>
    /// <param name="view">The Metadata answer (or a previous result of this method) the delta was asked against.</param>
    /// <param name="delta">A delta since an offset no newer than <paramref name="view"/>'s and not older than it either
    /// (deltas since an older offset apply too: they repeat changes the view already has).</param>
    /// <param name="includeFenced">Whether <paramref name="view"/> lists fenced brokers (it was read with
    /// <c>includeFenced=true</c>); by default fenced brokers are dropped from it, as the Metadata answer drops them.</param>
    /// <returns>The new view.</returns>
    /// <exception cref="ArgumentException">The delta starts after the view's offset (changes in between would be lost)
    /// or ends before it.</exception>
    public static MetadataResponse Apply(MetadataResponse view, MetadataDeltaResponse delta, bool includeFenced = false)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(delta);
        if (delta.Full is { } full)
        {
            return full;
        }

        if (delta.SinceOffset > view.MetadataOffset || delta.MetadataOffset < view.MetadataOffset)
        {
            throw new ArgumentException(
                $"A delta from offset {delta.SinceOffset} to {delta.MetadataOffset} cannot bring a view at offset {view.MetadataOffset} forward; ask for a delta since {view.MetadataOffset}.",
                nameof(delta));
        }

        var brokers = view.Brokers.ToDictionary(b => b.BrokerId);
        foreach (var id in delta.RemovedBrokers)
        {
            brokers.Remove(id);
        }

        foreach (var broker in delta.Brokers)
        {
            if (includeFenced || broker.State != "fenced")
            {
                brokers[broker.BrokerId] = broker;
            }
            else
            {
                brokers.Remove(broker.BrokerId);
            }
        }

        var topics = new Dictionary<string, TopicMetadata>(StringComparer.Ordinal);
        var order = new List<string>(view.Topics.Count);
        foreach (var topic in view.Topics)
        {
            if (topics.TryAdd(topic.Name, topic))
            {
                order.Add(topic.Name);
            }
        }

        foreach (var deleted in delta.DeletedTopics)
        {
            if (topics.TryGetValue(deleted.Name, out var gone) && gone.TopicId == deleted.TopicId && gone.ErrorCode is null)
            {
                topics.Remove(deleted.Name);
            }
        }

        foreach (var changed in delta.Topics)
        {
            topics[changed.Name] = ApplyTopic(topics.GetValueOrDefault(changed.Name), changed);
        }

        // A replica is offline when its broker is fenced or gone: a broker change can move partitions the delta does
        // not list, so their offline replicas are worked out again from the brokers as they are now.
        var brokerChanged = delta.Brokers.Count > 0 || delta.RemovedBrokers.Count > 0;
        var live = brokers.Values.Where(b => b.State != "fenced").Select(b => b.BrokerId).ToHashSet();
        var sorted = order.SequenceEqual(order.Order(StringComparer.Ordinal), StringComparer.Ordinal);
        var held = order.ToHashSet(StringComparer.Ordinal);
        var names = order.Where(topics.ContainsKey).Concat(delta.Topics.Select(t => t.Name).Where(n => !held.Contains(n)));
        var result = (sorted ? names.Order(StringComparer.Ordinal) : names)
            .Select(name => brokerChanged ? WithOffline(topics[name], live) : topics[name])
            .ToList();
        return new MetadataResponse([.. brokers.Values.OrderBy(b => b.BrokerId)], result, delta.Controller, delta.MetadataOffset)
        {
            ClusterId = delta.ClusterId,
        };
    }

    private static TopicMetadata ApplyTopic(TopicMetadata? held, TopicDelta changed)
    {
        var partitions = new PartitionInfo?[changed.PartitionCount];
        if (held is { ErrorCode: null } && held.TopicId == changed.TopicId)
        {
            foreach (var partition in held.Partitions)
            {
                if (partition.Partition < partitions.Length)
                {
                    partitions[partition.Partition] = partition;
                }
            }
        }

        foreach (var partition in changed.Partitions)
        {
            if (partition.Partition < partitions.Length)
            {
                partitions[partition.Partition] = partition;
            }
        }

        return new TopicMetadata(changed.Name, changed.TopicId, null, [.. partitions.OfType<PartitionInfo>()]) { IsInternal = changed.IsInternal };
    }

    private static TopicMetadata WithOffline(TopicMetadata topic, HashSet<int> live)
        => topic.ErrorCode is not null
            ? topic
            : topic with
            {
                Partitions = [.. topic.Partitions.Select(p => p with { OfflineReplicas = [.. p.Replicas.Where(r => !live.Contains(r))] })],
            };
}
