namespace OrleansMeta.Runtime.Persistence;

/// <summary>A stored grain state: its serialised payload (<c>null</c> when cleared) and its version.</summary>
public sealed record StoredGrainState(byte[]? Payload, long Version);

/// <summary>
/// Versioned storage for grain state. Every write and clear is a compare-and-set: it succeeds only when storage holds
/// <c>expectedVersion</c> (0 meaning "no row yet") and returns the new version; otherwise it throws
/// <see cref="InconsistentStateException"/> and changes nothing.
/// </summary>
public interface IGrainStorage
{
    /// <summary>Reads the state, or returns <c>null</c> when no row exists.</summary>
    Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="payload"/> if storage holds <paramref name="expectedVersion"/>; returns the new version.</summary>
    Task<long> WriteAsync(GrainId grainId, string stateName, byte[] payload, long expectedVersion, CancellationToken cancellationToken);

    /// <summary>Clears the payload if storage holds <paramref name="expectedVersion"/>, keeping the row so that the
    /// version keeps growing (a stale writer can never resurrect cleared state); returns the new version.</summary>
    Task<long> ClearAsync(GrainId grainId, string stateName, long expectedVersion, CancellationToken cancellationToken);
}
