namespace OrleansMeta.Runtime.Persistence;

/// <summary>
/// Grain storage and metadata log in process memory, for development mode and runtime unit tests. It keeps the
/// contract of the PostgreSQL provider (compare-and-set versions, fences, records appended atomically with their
/// write, gap-free offsets) and stores serialised bytes, so state behaves as it would when persisted.
/// </summary>
public sealed class InMemoryGrainStorage : IGrainStorage, IMetadataLog
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(GrainId, string), StoredGrainState> _rows = [];
    private readonly List<LoggedRecord> _log = [];
    private readonly TimeProvider _time;
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public InMemoryGrainStorage(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    public Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_rows.GetValueOrDefault((grainId, stateName)));
        }
    }

    public Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        TaskCompletionSource? appended = null;
        WriteResult result;
        lock (_gate)
        {
            var key = (grainId, stateName);
            var current = _rows.GetValueOrDefault(key);
            if ((current?.Version ?? 0) != write.ExpectedVersion)
            {
                throw StorageConflict.Create(grainId, stateName, write.ExpectedVersion, current?.Version ?? 0);
            }

            foreach (var fence in write.Fences)
            {
                var found = _rows.GetValueOrDefault((fence.GrainId, fence.StateName))?.Version ?? 0;
                if (found != fence.Version)
                {
                    throw StorageConflict.Fenced(grainId, fence, found);
                }
            }

            _rows[key] = new StoredGrainState(write.Payload?.ToArray(), write.ExpectedVersion + 1);
            long? lastOffset = null;
            foreach (var record in write.Records)
            {
                lastOffset = _log.Count + 1;
                _log.Add(new LoggedRecord(lastOffset.Value, record.Type, record.Key, record.Payload.ToArray(), _time.GetUtcNow()));
            }

            if (lastOffset is not null)
            {
                appended = _appended;
                _appended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            result = new WriteResult(write.ExpectedVersion + 1, lastOffset);
        }

        appended?.TrySetResult();
        return Task.FromResult(result);
    }

    public Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var start = (int)Math.Clamp(afterOffset, 0, _log.Count);
            return Task.FromResult<IReadOnlyList<LoggedRecord>>(_log.GetRange(start, Math.Min(maxCount, _log.Count - start)));
        }
    }

    public Task<long> GetHeadAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult((long)_log.Count);
        }
    }

    public async Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        Task appended;
        lock (_gate)
        {
            if (_log.Count > afterOffset)
            {
                return;
            }

            appended = _appended.Task;
        }

        try
        {
            await appended.WaitAsync(maxWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The caller re-reads either way.
        }
    }
}

/// <summary>Builds the messages every provider uses for a lost compare-and-set or a moved fence.</summary>
public static class StorageConflict
{
    public static InconsistentStateException Create(GrainId grainId, string stateName, long expectedVersion, long? storedVersion)
        => new(
            $"State '{stateName}' of grain {grainId} was written by someone else: expected version {expectedVersion}, " +
            $"storage holds {(storedVersion is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "a different version")}. " +
            "The activation is deactivated; the next call reloads the current state.",
            expectedVersion,
            storedVersion);

    public static FencedWriteException Fenced(GrainId grainId, WriteFence fence, long? foundVersion)
        => new(
            $"Write of grain {grainId} was fenced: it required {fence.GrainId} '{fence.StateName}' at version {fence.Version}, " +
            $"which is now {(foundVersion is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "different")}. Nothing was written.",
            fence,
            foundVersion);
}
