namespace OrleansMeta.Runtime.Persistence;

/// <summary>A stored grain state: its serialised payload (<c>null</c> when cleared) and its version.</summary>
public sealed record StoredGrainState(byte[]? Payload, long Version);

/// <summary>
/// Versioned storage for grain state. Every write is a compare-and-set: it succeeds only when storage holds the
/// expected version (0 meaning "no row yet") and every fence holds; otherwise it changes nothing and throws
/// <see cref="InconsistentStateException"/> (own row moved) or <see cref="FencedWriteException"/> (a fence moved).
/// Log records of a write are appended in the same transaction.
/// </summary>
public interface IGrainStorage
{
    /// <summary>Reads the state, or returns <c>null</c> when no row exists.</summary>
    Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken);

    /// <summary>Writes (or clears) the row, checks fences, appends log records: all or nothing.</summary>
    Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken);
}

/// <summary>Short forms of <see cref="IGrainStorage.WriteAsync"/>.</summary>
public static class GrainStorageExtensions
{
    /// <summary>Writes <paramref name="payload"/> if storage holds <paramref name="expectedVersion"/>; returns the new version.</summary>
    public static async Task<long> WriteAsync(this IGrainStorage storage, GrainId grainId, string stateName, byte[] payload, long expectedVersion, CancellationToken cancellationToken)
        => (await storage.WriteAsync(grainId, stateName, StateWrite.Put(payload, expectedVersion), cancellationToken).ConfigureAwait(false)).Version;

    /// <summary>Clears the payload if storage holds <paramref name="expectedVersion"/>, keeping the row so that the
    /// version keeps growing (a stale writer can never resurrect cleared state); returns the new version.</summary>
    public static async Task<long> ClearAsync(this IGrainStorage storage, GrainId grainId, string stateName, long expectedVersion, CancellationToken cancellationToken)
        => (await storage.WriteAsync(grainId, stateName, StateWrite.Clear(expectedVersion), cancellationToken).ConfigureAwait(false)).Version;
}

/// <summary>
/// Names the silo on whose behalf this process writes grain state. A storage that knows it commits a write only while
/// that silo's membership row is not Dead, so a silo its peers declared dead (and whose grains they moved) can commit
/// nothing more, even before it learns it is dead. <see cref="Writer"/> is null before the silo has registered.
/// </summary>
public interface IWriterFence
{
    /// <summary>The writing silo, or null when there is none (yet).</summary>
    Cluster.SiloAddress? Writer { get; }
}
