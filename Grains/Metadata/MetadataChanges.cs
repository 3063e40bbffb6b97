using System.Collections.Immutable;

namespace OrleansMeta.Grains.Metadata;

/// <summary>When a topic's partitions last changed, as the change index of <see cref="MetadataChanges"/> holds it.</summary>
/// <param name="TopicId">The topic id these offsets belong to (a topic deleted and created again under its name starts afresh).</param>
/// <param name="CreatedAt">The offset of the record that created this topic id.</param>
/// <param name="PartitionChangedAt">Per partition, the offset of the last record that changed it (its creation included).</param>
/// <param name="LastChangedAt">The largest of those offsets: the topic's key in the since-offset index.</param>
public sealed record TopicChanges(Guid TopicId, long CreatedAt, ChunkedArray<long> PartitionChangedAt, long LastChangedAt);

/// <summary>A deleted topic, kept for a bounded window so that deltas can tell clients to drop it.</summary>
/// <param name="Offset">The offset of the record that deleted (or replaced) it.</param>
public sealed record TopicTombstone(long Offset, Guid TopicId, string Name);

/// <summary>
/// What changed when, for metadata deltas ("what changed since offset N"): per broker and per partition the offset of
/// the last record that changed it, topics ordered by their last change so that the topics changed after N are found in
/// O(log topics + changed) without visiting unchanged ones, and tombstones of deleted topics and removed brokers.
/// Only changes visible in the Metadata answer count: a topic config change moves nothing here.
/// <para>
/// Nothing here needs to be stored with the image. An image rebuilt from anything but the whole log (a snapshot at
/// offset B) starts with <see cref="Since(long)"/>(B): no entity has a known change offset, which reads as "unchanged
/// since B", and <see cref="Floor"/> = B makes every delta since an offset below B a full answer instead.
/// </para>
/// </summary>
public sealed class MetadataChanges
{
    /// <summary>Deleted topics remembered; when more are deleted the oldest is forgotten and <see cref="Floor"/> rises to it.</summary>
    public const int MaxTopicTombstones = 10_000;

    /// <summary>Removed (unregistered) brokers remembered, with the same rule.</summary>
    public const int MaxBrokerTombstones = 1_000;

    private static readonly ImmutableSortedSet<(long At, string Name)> EmptyIndex = ImmutableSortedSet<(long At, string Name)>.Empty.WithComparer(ChangeOrder.Instance);

    private MetadataChanges(
        long floor,
        ImmutableDictionary<int, long> brokerChangedAt,
        ImmutableDictionary<int, long> removedBrokers,
        ImmutableDictionary<string, TopicChanges> topics,
        ImmutableSortedSet<(long At, string Name)> topicsByChange,
        ImmutableList<TopicTombstone> tombstones)
    {
        Floor = floor;
        BrokerChangedAt = brokerChangedAt;
        RemovedBrokers = removedBrokers;
        Topics = topics;
        TopicsByChange = topicsByChange;
        Tombstones = tombstones;
    }

    /// <summary>The lowest <c>sinceOffset</c> a delta can be answered for: the offset the image started from (0 when
    /// it was built from the whole log), raised to the newest tombstone forgotten.</summary>
    public long Floor { get; }

    /// <summary>Per present broker, the offset of its last record.</summary>
    public ImmutableDictionary<int, long> BrokerChangedAt { get; }

    /// <summary>Unregistered brokers, by id, with the offset of the record that removed them.</summary>
    public ImmutableDictionary<int, long> RemovedBrokers { get; }

    /// <summary>Change offsets of live topics, by name.</summary>
    public ImmutableDictionary<string, TopicChanges> Topics { get; }

    /// <summary>Live topics ordered by <see cref="TopicChanges.LastChangedAt"/>.</summary>
    public ImmutableSortedSet<(long At, string Name)> TopicsByChange { get; }

    /// <summary>Deleted topics in offset order, at most <see cref="MaxTopicTombstones"/>.</summary>
    public ImmutableList<TopicTombstone> Tombstones { get; }

    /// <summary>No change known: deltas answer only from <paramref name="floor"/> on.</summary>
    public static MetadataChanges Since(long floor) => new(floor, ImmutableDictionary<int, long>.Empty, ImmutableDictionary<int, long>.Empty,
        ImmutableDictionary<string, TopicChanges>.Empty.WithComparers(StringComparer.Ordinal), EmptyIndex, []);

    /// <summary>Names of live topics whose partitions changed after <paramref name="offset"/>, newest first.</summary>
    public IEnumerable<string> TopicsChangedAfter(long offset)
    {
        foreach (var (at, name) in TopicsByChange.Reverse())
        {
            if (at <= offset)
            {
                yield break;
            }

            yield return name;
        }
    }

    /// <summary>Topics deleted after <paramref name="offset"/>, oldest first.</summary>
    public IEnumerable<TopicTombstone> DeletedAfter(long offset)
    {
        // Binary search for the first tombstone after the offset: tombstones are appended in offset order.
        int low = 0, high = Tombstones.Count;
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (Tombstones[middle].Offset <= offset)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        for (var i = low; i < Tombstones.Count; i++)
        {
            yield return Tombstones[i];
        }
    }

    internal Builder ToBuilder() => new(this);

    /// <summary>Collects one batch of records' changes; <see cref="MetadataImage.Apply"/> calls it beside each edit it makes.</summary>
    internal sealed class Builder(MetadataChanges from)
    {
        private readonly ImmutableDictionary<int, long>.Builder _brokers = from.BrokerChangedAt.ToBuilder();
        private readonly ImmutableDictionary<int, long>.Builder _removed = from.RemovedBrokers.ToBuilder();
        private readonly ImmutableDictionary<string, TopicChanges>.Builder _topics = from.Topics.ToBuilder();
        private readonly ImmutableList<TopicTombstone>.Builder _tombstones = from.Tombstones.ToBuilder();

        // Partition offset arrays edited in this batch, each chunk copied once when first changed (as MetadataImage.Apply
        // edits states).
        private readonly Dictionary<string, ChunkedArray<long>.Builder> _edited = new(StringComparer.Ordinal);

        // Topics whose index key moves: re-keyed once per batch, not once per record.
        private readonly HashSet<string> _touched = new(StringComparer.Ordinal);
        private long _floor = from.Floor;

        public void BrokerChanged(int brokerId, long offset)
        {
            _brokers[brokerId] = offset;
            _removed.Remove(brokerId);
        }

        public void BrokerRemoved(int brokerId, long offset)
        {
            _brokers.Remove(brokerId);
            _removed[brokerId] = offset;
            if (_removed.Count > MaxBrokerTombstones)
            {
                var oldest = _removed.MinBy(kv => kv.Value);
                _removed.Remove(oldest.Key);
                _floor = Math.Max(_floor, oldest.Value);
            }
        }

        /// <summary>A new topic id under <paramref name="name"/>; <paramref name="replaced"/> is the live topic of that name it replaces, if any.</summary>
        public void TopicCreated(string name, Guid topicId, int partitions, long offset, Guid? replaced)
        {
            if (replaced is { } old)
            {
                Tombstone(old, name, offset);
            }

            _edited.Remove(name);
            _topics[name] = new TopicChanges(topicId, offset, ChunkedArray.Repeat(offset, partitions), offset);
            _touched.Add(name);
        }

        /// <summary>The live topic grew from <paramref name="before"/> to <paramref name="after"/> partitions at <paramref name="offset"/>.</summary>
        public void TopicGrown(string name, Guid topicId, int before, int after, long offset)
        {
            if (after <= before)
            {
                return;
            }

            var array = Edit(name, topicId, before);
            while (array.Length < after)
            {
                array.Add(offset);
            }

            Touch(name, offset);
        }

        public void TopicDeleted(string name, Guid topicId, long offset)
        {
            _topics.Remove(name);
            _edited.Remove(name);
            _touched.Add(name);
            Tombstone(topicId, name, offset);
        }

        /// <summary>Partition <paramref name="partition"/> of the live topic (of <paramref name="partitions"/> partitions) changed at <paramref name="offset"/>.</summary>
        public void PartitionChanged(string name, Guid topicId, int partitions, int partition, long offset)
        {
            var array = Edit(name, topicId, partitions);
            if (partition < array.Length)
            {
                array[partition] = offset;
                Touch(name, offset);
            }
        }

        public MetadataChanges ToImmutable()
        {
            // Forgotten once published, so that a later edit through this builder starts from what was published.
            foreach (var (name, array) in _edited)
            {
                if (_topics.TryGetValue(name, out var topic))
                {
                    _topics[name] = topic with { PartitionChangedAt = array.ToImmutable() };
                }
            }

            _edited.Clear();

            var index = from.TopicsByChange;
            if (_touched.Count > 0)
            {
                var builder = index.ToBuilder();
                foreach (var name in _touched)
                {
                    if (from.Topics.TryGetValue(name, out var before))
                    {
                        builder.Remove((before.LastChangedAt, name));
                    }

                    if (_topics.TryGetValue(name, out var after))
                    {
                        builder.Add((after.LastChangedAt, name));
                    }
                }

                index = builder.ToImmutable();
            }

            return new MetadataChanges(_floor, _brokers.ToImmutable(), _removed.ToImmutable(), _topics.ToImmutable(), index, _tombstones.ToImmutable());
        }

        /// <summary>The batch's editable copy of a live topic's offsets. A topic the index does not know (the image started
        /// from a snapshot after it was created) starts with every offset 0: unchanged since the floor.</summary>
        private ChunkedArray<long>.Builder Edit(string name, Guid topicId, int partitions)
        {
            if (_edited.TryGetValue(name, out var array))
            {
                return array;
            }

            if (_topics.TryGetValue(name, out var topic) && topic.TopicId == topicId)
            {
                array = topic.PartitionChangedAt.ToBuilder();
            }
            else
            {
                array = ChunkedArray.Repeat(0L, partitions).ToBuilder();
                _topics[name] = new TopicChanges(topicId, 0, ChunkedArray<long>.Empty, 0);
            }

            _edited[name] = array;
            return array;
        }

        private void Touch(string name, long offset)
        {
            _touched.Add(name);
            _topics[name] = _topics[name] with { LastChangedAt = offset };
        }

        private void Tombstone(Guid topicId, string name, long offset)
        {
            _tombstones.Add(new TopicTombstone(offset, topicId, name));
            if (_tombstones.Count > MaxTopicTombstones)
            {
                _floor = Math.Max(_floor, _tombstones[0].Offset);
                _tombstones.RemoveAt(0);
            }
        }
    }

    /// <summary>Orders the index by offset, then by name (ordinal, so every silo orders alike).</summary>
    private sealed class ChangeOrder : IComparer<(long At, string Name)>
    {
        public static readonly ChangeOrder Instance = new();

        public int Compare((long At, string Name) x, (long At, string Name) y)
        {
            var byOffset = x.At.CompareTo(y.At);
            return byOffset != 0 ? byOffset : string.CompareOrdinal(x.Name, y.Name);
        }
    }
}
