using System.Collections.Concurrent;

namespace OrleansMeta.Runtime.Persistence;

/// <summary>
/// Grain storage in process memory, for development mode and runtime unit tests. It keeps the same compare-and-set
/// contract as the PostgreSQL provider, and stores serialised bytes so that state behaves as it would when persisted.
/// </summary>
public sealed class InMemoryGrainStorage : IGrainStorage
{
    private readonly ConcurrentDictionary<(GrainId, string), StoredGrainState> _rows = new();

    public Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
        => Task.FromResult(_rows.TryGetValue((grainId, stateName), out var row) ? row : null);

    public Task<long> WriteAsync(GrainId grainId, string stateName, byte[] payload, long expectedVersion, CancellationToken cancellationToken)
        => Task.FromResult(CompareAndSet(grainId, stateName, payload, expectedVersion));

    public Task<long> ClearAsync(GrainId grainId, string stateName, long expectedVersion, CancellationToken cancellationToken)
        => Task.FromResult(CompareAndSet(grainId, stateName, payload: null, expectedVersion));

    private long CompareAndSet(GrainId grainId, string stateName, byte[]? payload, long expectedVersion)
    {
        var key = (grainId, stateName);
        var next = new StoredGrainState(payload?.ToArray(), expectedVersion + 1);
        if (expectedVersion == 0)
        {
            if (_rows.TryAdd(key, next))
            {
                return next.Version;
            }
        }
        else if (_rows.TryGetValue(key, out var current) && current.Version == expectedVersion && _rows.TryUpdate(key, next, current))
        {
            return next.Version;
        }

        _rows.TryGetValue(key, out var found);
        throw StorageConflict.Create(grainId, stateName, expectedVersion, found?.Version ?? 0);
    }
}

/// <summary>Builds the one message every provider uses for a lost compare-and-set.</summary>
public static class StorageConflict
{
    public static InconsistentStateException Create(GrainId grainId, string stateName, long expectedVersion, long? storedVersion)
        => new(
            $"State '{stateName}' of grain {grainId} was written by someone else: expected version {expectedVersion}, " +
            $"storage holds {(storedVersion is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "a different version")}. " +
            "The activation is deactivated; the next call reloads the current state.",
            expectedVersion,
            storedVersion);
}
