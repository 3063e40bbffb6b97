using System.Collections.Concurrent;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client;

/// <summary>
/// Partition leaders the client has seen, fed by every metadata, topic and partition answer it receives. Thread-safe.
/// </summary>
/// <remarks>
/// Silos answer from their own metadata image, and one may lag behind another, so answers can arrive out of order.
/// The cache therefore never goes back in leader epoch: an answer with an older leader epoch than the one held is
/// ignored. A topic that was deleted and created again has a new topic id; an answer about the new topic replaces
/// everything held for the old one, and an answer about the old topic from a silo that has not seen the change yet
/// (a lower metadata offset) is ignored.
/// </remarks>
public sealed class LeaderCache
{
    private readonly ConcurrentDictionary<string, TopicLeaders> _topics = new(StringComparer.Ordinal);

    /// <summary>Looks up the leader of a partition.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index.</param>
    /// <param name="leader">The leader's broker id, when found.</param>
    /// <param name="leaderEpoch">The leader epoch, when found.</param>
    /// <returns>True when the cache holds a live leader for the partition that has not been invalidated.</returns>
    public bool TryGetLeader(string topic, int partition, out int leader, out int leaderEpoch)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (_topics.TryGetValue(topic, out var leaders) && leaders.TryGet(partition, out var entry) && entry.IsUsable)
        {
            leader = entry.Leader;
            leaderEpoch = entry.LeaderEpoch;
            return true;
        }

        leader = -1;
        leaderEpoch = -1;
        return false;
    }

    /// <summary>Forgets the leader of a partition after a broker said it no longer leads (e.g. NOT_LEADER_OR_FOLLOWER
    /// or FENCED_LEADER_EPOCH), so that the next lookup fetches metadata. Does nothing when the cache already holds a
    /// newer leader epoch than <paramref name="staleLeaderEpoch"/>. The epoch is remembered: answers older than it are
    /// still ignored.</summary>
    /// <param name="topic">The topic name.</param>
    /// <param name="partition">The partition index.</param>
    /// <param name="staleLeaderEpoch">The leader epoch the failed request used.</param>
    /// <returns>True when the entry was dropped.</returns>
    public bool Invalidate(string topic, int partition, int staleLeaderEpoch)
    {
        ArgumentNullException.ThrowIfNull(topic);
        return _topics.TryGetValue(topic, out var leaders) && leaders.Invalidate(partition, staleLeaderEpoch);
    }

    /// <summary>Learns the leaders of every topic in a metadata answer, and forgets topics it reports as unknown.</summary>
    /// <param name="metadata">A metadata answer.</param>
    public void Update(MetadataResponse metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        foreach (var topic in metadata.Topics)
        {
            if (topic.ErrorCode is null)
            {
                Apply(topic.Name, topic.TopicId, metadata.MetadataOffset, topic.Partitions);
            }
            else if (topic.ErrorCode == ErrorCodes.UnknownTopicOrPartition)
            {
                Forget(topic.Name, topicId: null, metadata.MetadataOffset);
            }
        }
    }

    /// <summary>Learns the leaders a metadata delta reports (or its full answer) and forgets the topics it reports deleted.</summary>
    /// <param name="delta">A metadata delta.</param>
    public void Update(MetadataDeltaResponse delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (delta.Full is { } full)
        {
            Update(full);
            return;
        }

        foreach (var deleted in delta.DeletedTopics)
        {
            Forget(deleted.Name, deleted.TopicId, deleted.DeletedAt);
        }

        foreach (var topic in delta.Topics)
        {
            Apply(topic.Name, topic.TopicId, delta.MetadataOffset, topic.Partitions);
        }
    }

    /// <summary>Learns the leaders of the topic in a topic answer.</summary>
    /// <param name="topic">A topic answer.</param>
    public void Update(TopicResponse topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        Apply(topic.Topic.Name, topic.Topic.TopicId, topic.MetadataOffset, topic.Topic.Partitions);
    }

    /// <summary>Learns the leader of the partition in a partition answer.</summary>
    /// <param name="partition">A partition answer.</param>
    public void Update(PartitionResponse partition)
    {
        ArgumentNullException.ThrowIfNull(partition);
        // A partition answer carries no topic id: it updates whichever incarnation of the topic is held.
        Apply(partition.Topic, topicId: null, partition.MetadataOffset, [partition.Partition]);
    }

    /// <summary>Learns the leaders of the partitions a batched AlterPartition changed.</summary>
    /// <param name="altered">A batched AlterPartition answer.</param>
    public void Update(AlterPartitionsResponse altered)
    {
        ArgumentNullException.ThrowIfNull(altered);
        foreach (var topic in altered.Topics)
        {
            var changed = topic.Partitions.Where(p => p.State is not null).Select(p => p.State!).ToList();
            if (topic.TopicId is { } id && changed.Count > 0)
            {
                Apply(topic.Topic, id, altered.MetadataOffset, changed);
            }
        }
    }

    /// <summary>Forgets a deleted topic, unless the cache already holds a newer topic of that name.</summary>
    /// <param name="deleted">A delete answer.</param>
    public void Update(DeleteTopicResponse deleted)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        Forget(deleted.Name, deleted.TopicId, deleted.MetadataOffset);
    }

    private void Apply(string topic, Guid? topicId, long offset, IReadOnlyList<PartitionInfo> partitions)
    {
        // TopicLeaders is locked and may be removed concurrently; retry until the update lands in the live instance.
        while (true)
        {
            var leaders = _topics.GetOrAdd(topic, static _ => new TopicLeaders());
            if (leaders.Apply(topicId, offset, partitions))
            {
                return;
            }
        }
    }

    private void Forget(string topic, Guid? topicId, long offset)
    {
        if (_topics.TryGetValue(topic, out var leaders) && leaders.Retire(topicId, offset))
        {
            _topics.TryRemove(new KeyValuePair<string, TopicLeaders>(topic, leaders));
        }
    }

    private readonly record struct Entry(int Leader, int LeaderEpoch, bool Invalidated)
    {
        public bool IsUsable => !Invalidated && Leader >= 0;
    }

    /// <summary>The leaders of one incarnation of a topic.</summary>
    private sealed class TopicLeaders
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<int, Entry> _partitions = [];
        private Guid? _topicId;
        private long _offset = -1;
        private bool _retired;

        public bool TryGet(int partition, out Entry entry)
        {
            lock (_lock)
            {
                return _partitions.TryGetValue(partition, out entry);
            }
        }

        /// <returns>False when this instance was retired and the caller must use a fresh one.</returns>
        public bool Apply(Guid? topicId, long offset, IReadOnlyList<PartitionInfo> partitions)
        {
            lock (_lock)
            {
                if (_retired)
                {
                    return false;
                }

                if (topicId is { } id && _topicId is { } held && id != held)
                {
                    if (offset < _offset)
                    {
                        return true; // A lagging silo still sees the old topic.
                    }

                    _partitions.Clear(); // The topic was recreated: nothing of the old one carries over.
                }

                if (topicId is not null)
                {
                    _topicId = topicId;
                }

                _offset = Math.Max(_offset, offset);
                foreach (var p in partitions)
                {
                    if (!_partitions.TryGetValue(p.Partition, out var current) || p.LeaderEpoch >= current.LeaderEpoch)
                    {
                        _partitions[p.Partition] = new Entry(p.Leader, p.LeaderEpoch, Invalidated: false);
                    }
                }

                return true;
            }
        }

        public bool Invalidate(int partition, int staleLeaderEpoch)
        {
            lock (_lock)
            {
                if (_partitions.TryGetValue(partition, out var entry) && !entry.Invalidated && entry.LeaderEpoch <= staleLeaderEpoch)
                {
                    _partitions[partition] = entry with { Invalidated = true };
                    return true;
                }

                return false;
            }
        }

        /// <summary>Marks the topic gone when the news is not older than what is held and, if an id is given, about
        /// the incarnation held.</summary>
        public bool Retire(Guid? topicId, long offset)
        {
            lock (_lock)
            {
                if (offset < _offset || (topicId is { } id && _topicId is { } held && id != held))
                {
                    return false;
                }

                _retired = true;
                return true;
            }
        }
    }
}
