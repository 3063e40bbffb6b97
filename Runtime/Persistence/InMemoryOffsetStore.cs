namespace OrleansMeta.Runtime.Persistence;

/// <summary>
/// Committed offsets in process memory, for development mode and unit tests. It keeps the PostgreSQL store's contract
/// (same input checks, a call's commits applied all or none, the later of two commits of a partition wins, commit
/// times from one clock) but has no writer fence: there is one process and nothing to fence.
/// </summary>
public sealed class InMemoryOffsetStore : IOffsetStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Dictionary<OffsetKey, CommittedOffset>> _groups = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public InMemoryOffsetStore(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <inheritdoc />
    public Task CommitAsync(string groupId, IReadOnlyList<OffsetCommit> commits, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateCommit(groupId, commits);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        if (commits.Count == 0)
        {
            return Task.CompletedTask;
        }

        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (!_groups.TryGetValue(groupId, out var offsets))
            {
                _groups[groupId] = offsets = [];
            }

            foreach (var commit in commits)
            {
                offsets[commit.Key] = new CommittedOffset(commit.TopicId, commit.Topic, commit.Partition, commit.Offset, commit.LeaderEpoch, commit.Metadata, now);
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CommittedOffset>> ReadAsync(string groupId, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateGroupId(groupId);
        lock (_gate)
        {
            IReadOnlyList<CommittedOffset> offsets = _groups.TryGetValue(groupId, out var rows)
                ? [.. rows.Values.OrderBy(row => row.Topic, StringComparer.Ordinal).ThenBy(row => row.TopicId).ThenBy(row => row.Partition)]
                : [];
            return Task.FromResult(offsets);
        }
    }

    /// <inheritdoc />
    public Task<int> DeleteAsync(string groupId, IReadOnlyList<OffsetKey>? partitions, CancellationToken cancellationToken)
    {
        OffsetValidation.ValidateGroupId(groupId);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<int>(cancellationToken);
        }

        lock (_gate)
        {
            if (!_groups.TryGetValue(groupId, out var offsets))
            {
                return Task.FromResult(0);
            }

            int deleted;
            if (partitions is null)
            {
                deleted = offsets.Count;
                offsets.Clear();
            }
            else
            {
                deleted = partitions.Distinct().Count(offsets.Remove);
            }

            if (offsets.Count == 0)
            {
                _groups.Remove(groupId);
            }

            return Task.FromResult(deleted);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> ListGroupsAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        lock (_gate)
        {
            IReadOnlyList<string> groups =
            [
                .. _groups.Where(group => group.Value.Count > 0 && (after is null || string.CompareOrdinal(group.Key, after) > 0))
                    .Select(group => group.Key)
                    .Order(StringComparer.Ordinal)
                    .Take(limit),
            ];
            return Task.FromResult(groups);
        }
    }
}
