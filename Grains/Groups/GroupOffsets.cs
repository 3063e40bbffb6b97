using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// One group's committed offsets in memory, packed per topic in arrays indexed by partition (about 30 bytes an offset
/// instead of a dictionary entry and a record each), because a silo holds every group it owns: a million offsets
/// cluster-wide. Only the group's grain writes, in its turns; listings on other threads read offsets without locks
/// (<see cref="SumLag"/>): each array is complete before it is published, and one offset is one atomic 64-bit word, so
/// a reader sees, per partition, the value before or after a commit, never a torn one.
/// </summary>
internal sealed class GroupOffsets
{
    private const long Absent = -1;
    private volatile TopicSlots[] _topics = [];
    private volatile int _count;

    /// <summary>How many partitions have an offset.</summary>
    public int Count => _count;

    /// <summary>Every offset, topic by topic (grain turns only).</summary>
    public IEnumerable<CommittedOffset> Values
    {
        get
        {
            foreach (var topic in _topics)
            {
                var slots = topic.Slots;
                for (var p = 0; p < slots.Offsets.Length; p++)
                {
                    if (slots.Offsets[p] != Absent)
                    {
                        yield return new CommittedOffset(topic.TopicId, topic.Topic, p, slots.Offsets[p], slots.LeaderEpochs[p], slots.Metadata?[p],
                            new DateTimeOffset(slots.CommittedAtTicks[p], TimeSpan.Zero));
                    }
                }
            }
        }
    }

    /// <summary>The partitions that have an offset (grain turns only).</summary>
    public IEnumerable<OffsetKey> Keys => Values.Select(o => o.Key);

    public static GroupOffsets From(IEnumerable<CommittedOffset> offsets)
    {
        var group = new GroupOffsets();
        foreach (var offset in offsets)
        {
            group.Set(offset);
        }

        return group;
    }

    /// <summary>Sets one partition's offset (grain turns only).</summary>
    public void Set(CommittedOffset offset)
    {
        var topic = Find(offset.TopicId) ?? Add(offset.TopicId, offset.Topic);
        topic.Topic = string.Intern(offset.Topic);
        var slots = topic.Slots;
        if (offset.Partition >= slots.Offsets.Length)
        {
            slots = slots.Grow(offset.Partition + 1);
        }

        if (offset.Metadata is not null && slots.Metadata is null)
        {
            slots = slots.WithMetadata();
        }

        // The fields readers do not look at first, the offset last; then the arrays, if new, are published.
        slots.LeaderEpochs[offset.Partition] = offset.LeaderEpoch;
        slots.CommittedAtTicks[offset.Partition] = offset.CommittedAt.UtcTicks;
        if (slots.Metadata is { } metadata)
        {
            metadata[offset.Partition] = offset.Metadata;
        }

        if (slots.Offsets[offset.Partition] == Absent)
        {
            _count++;
        }

        Volatile.Write(ref slots.Offsets[offset.Partition], offset.Offset);
        topic.Slots = slots;
    }

    /// <summary>Removes one partition's offset; false if it had none (grain turns only).</summary>
    public bool Remove(OffsetKey key)
    {
        if (Find(key.TopicId) is not { } topic || key.Partition >= topic.Slots.Offsets.Length || topic.Slots.Offsets[key.Partition] == Absent)
        {
            return false;
        }

        Volatile.Write(ref topic.Slots.Offsets[key.Partition], Absent);
        _count--;
        if (topic.Slots.Offsets.All(o => o == Absent))
        {
            _topics = [.. _topics.Where(t => t != topic)];
        }

        return true;
    }

    /// <summary>
    /// The lag summed over partitions whose log end <paramref name="logOffsets"/> knows, how many it does not know, and
    /// how many offsets there are. Safe on any thread, concurrently with the grain's writes.
    /// </summary>
    public (long TotalLag, int Unknown, int Count) SumLag(LogOffsetsTable logOffsets)
    {
        long total = 0;
        int unknown = 0, count = 0;
        foreach (var topic in _topics)
        {
            var offsets = topic.Slots.Offsets;
            for (var p = 0; p < offsets.Length; p++)
            {
                var committed = Volatile.Read(ref offsets[p]);
                if (committed == Absent)
                {
                    continue;
                }

                count++;
                if (logOffsets.TryGetLogEnd(topic.TopicId, p, out var end))
                {
                    total += Math.Max(0, end - committed);
                }
                else
                {
                    unknown++;
                }
            }
        }

        return (total, unknown, count);
    }

    private TopicSlots? Find(Guid topicId)
    {
        foreach (var topic in _topics)
        {
            if (topic.TopicId == topicId)
            {
                return topic;
            }
        }

        return null;
    }

    private TopicSlots Add(Guid topicId, string name)
    {
        var topic = new TopicSlots(topicId, name);
        _topics = [.. _topics, topic];
        return topic;
    }

    private sealed class TopicSlots(Guid topicId, string topic)
    {
        public Guid TopicId { get; } = topicId;

        /// <summary>The name at the last commit, for people (the image gives the current one).</summary>
        public string Topic { get; set; } = topic;

        public volatile Slots Slots = Slots.Empty;
    }

    /// <summary>One topic's partitions; replaced as a whole when it grows, so readers see complete arrays.</summary>
    private sealed class Slots(long[] offsets, int[] leaderEpochs, long[] committedAtTicks, string?[]? metadata)
    {
        public static Slots Empty { get; } = new([], [], [], null);

        public long[] Offsets { get; } = offsets;

        public int[] LeaderEpochs { get; } = leaderEpochs;

        public long[] CommittedAtTicks { get; } = committedAtTicks;

        /// <summary>Allocated only once some partition has metadata (most consumers send none).</summary>
        public string?[]? Metadata { get; } = metadata;

        public Slots Grow(int size)
        {
            var offsets = new long[size];
            Array.Fill(offsets, Absent);
            Offsets.CopyTo(offsets, 0);
            var epochs = new int[size];
            LeaderEpochs.CopyTo(epochs, 0);
            var at = new long[size];
            CommittedAtTicks.CopyTo(at, 0);
            string?[]? metadata = null;
            if (Metadata is not null)
            {
                metadata = new string?[size];
                Metadata.CopyTo(metadata, 0);
            }

            return new Slots(offsets, epochs, at, metadata);
        }

        public Slots WithMetadata() => new(Offsets, LeaderEpochs, CommittedAtTicks, new string?[Offsets.Length]);
    }
}
