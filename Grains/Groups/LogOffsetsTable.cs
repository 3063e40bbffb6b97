using System.Collections.Concurrent;

namespace OrleansMeta.Grains.Groups;

/// <summary>A partition's log offsets as its leader reported them, with the leader epoch they were taken under.</summary>
public readonly record struct LogOffsets(long LogStartOffset, long LogEndOffset, int LeaderEpoch);

/// <summary>One partition's reported offsets, named by topic id.</summary>
public readonly record struct LogOffsetsEntry(Guid TopicId, int Partition, LogOffsets Offsets);

/// <summary>
/// Every partition's log offsets as leaders reported them, held by every silo (each report is applied where it arrives
/// and passed on to every other silo), so group grains compute lag and resets from this silo's memory. It is telemetry,
/// not truth: it is not stored, a silo that starts has none until the next reports, and a report taken under an older
/// leader epoch than one already held is ignored, so a deposed leader's late report cannot move a partition back.
/// </summary>
/// <remarks>
/// Kept per topic as arrays indexed by partition (about 20 bytes a partition), because a million partitions are
/// reported every few seconds and a dictionary entry per partition would cost four times the memory. Writers take a
/// lock per topic; lag, summed over many partitions, reads log ends without one.
/// </remarks>
public sealed class LogOffsetsTable
{
    private readonly ConcurrentDictionary<Guid, TopicOffsets> _topics = new();

    /// <summary>Takes <paramref name="entries"/>; returns how many were newer than or as new as what was held.</summary>
    public int Apply(IEnumerable<LogOffsetsEntry> entries)
    {
        var applied = 0;
        TopicOffsets? topic = null;
        foreach (var entry in entries)
        {
            if (entry.Partition < 0)
            {
                continue;
            }

            if (topic is null || topic.TopicId != entry.TopicId)
            {
                topic = _topics.GetOrAdd(entry.TopicId, static id => new TopicOffsets(id));
            }

            if (topic.Set(entry.Partition, entry.Offsets))
            {
                applied++;
            }
        }

        return applied;
    }

    /// <summary>The partition's offsets, if its leader reported them.</summary>
    public bool TryGet(Guid topicId, int partition, out LogOffsets offsets)
    {
        if (_topics.TryGetValue(topicId, out var topic))
        {
            return topic.TryGet(partition, out offsets);
        }

        offsets = default;
        return false;
    }

    /// <summary>The partition's log end, if its leader reported it; without a lock, for lag over many partitions.</summary>
    public bool TryGetLogEnd(Guid topicId, int partition, out long logEnd)
    {
        if (_topics.TryGetValue(topicId, out var topic))
        {
            return topic.TryGetLogEnd(partition, out logEnd);
        }

        logEnd = 0;
        return false;
    }

    /// <summary>Forgets topics that no longer exist (their ids never come back).</summary>
    public void Retain(Func<Guid, bool> exists)
    {
        foreach (var id in _topics.Keys)
        {
            if (!exists(id))
            {
                _topics.TryRemove(id, out _);
            }
        }
    }

    private sealed class TopicOffsets(Guid topicId)
    {
        private const long Unknown = -1;
        private readonly Lock _lock = new();
        private long[] _start = [];

        // Leader epoch + 1, so that 0 means "never reported".
        private int[] _epoch = [];

        // Read without the lock: replaced as a whole (after it is filled) when it grows, and each value is one atomic word.
        private volatile long[] _end = [];

        public Guid TopicId { get; } = topicId;

        public bool Set(int partition, LogOffsets offsets)
        {
            lock (_lock)
            {
                var end = _end;
                if (partition >= end.Length)
                {
                    var size = Math.Max(partition + 1, end.Length * 2);
                    Array.Resize(ref _start, size);
                    Array.Resize(ref _epoch, size);
                    var grown = new long[size];
                    Array.Fill(grown, Unknown);
                    end.CopyTo(grown, 0);
                    end = grown;
                }

                var held = _epoch[partition];
                if (held > offsets.LeaderEpoch + 1)
                {
                    return false;
                }

                _start[partition] = offsets.LogStartOffset;
                _epoch[partition] = offsets.LeaderEpoch + 1;
                Volatile.Write(ref end[partition], offsets.LogEndOffset);
                _end = end;
                return true;
            }
        }

        public bool TryGet(int partition, out LogOffsets offsets)
        {
            lock (_lock)
            {
                if (partition < _epoch.Length && _epoch[partition] is var epoch and > 0)
                {
                    offsets = new LogOffsets(_start[partition], _end[partition], epoch - 1);
                    return true;
                }
            }

            offsets = default;
            return false;
        }

        public bool TryGetLogEnd(int partition, out long logEnd)
        {
            var end = _end;
            logEnd = partition < end.Length ? Volatile.Read(ref end[partition]) : Unknown;
            return logEnd != Unknown;
        }
    }
}
