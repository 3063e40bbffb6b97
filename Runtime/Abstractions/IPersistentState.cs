namespace OrleansMeta.Runtime;

/// <summary>
/// A grain's persistent state. Reads come from memory; every write is a compare-and-set on <see cref="Version"/> in
/// storage. A write that finds a newer version throws <see cref="InconsistentStateException"/> and the activation is
/// deactivated after the current turn, so the next call loads the winner's state.
/// </summary>
public interface IPersistentState<TState> where TState : new()
{
    /// <summary>The state as of the last read or write.</summary>
    TState State { get; set; }

    /// <summary>The stored version as an opaque tag, or <c>null</c> when nothing is stored.</summary>
    string? Etag { get; }

    /// <summary>The stored version: 0 when no row exists, then 1, 2, ... on every write or clear.</summary>
    long Version { get; }

    /// <summary>Whether storage holds a value (false before the first write and after a clear).</summary>
    bool RecordExists { get; }

    /// <summary>Re-reads the state from storage, discarding unsaved changes.</summary>
    Task ReadStateAsync(CancellationToken cancellationToken = default);

    /// <summary>Writes <see cref="State"/> if storage still holds <see cref="Version"/>.</summary>
    Task WriteStateAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <see cref="State"/> if storage still holds <see cref="Version"/> and every fence holds, appending
    /// <paramref name="records"/> to the metadata log in the same transaction. Returns the offset of the last record
    /// (or <c>null</c> when none). A moved fence throws <see cref="Persistence.FencedWriteException"/> and leaves the
    /// activation's state as it was.
    /// </summary>
    Task<long?> WriteStateAsync(IReadOnlyList<Persistence.LogRecord> records, IReadOnlyList<Persistence.WriteFence>? fences = null, CancellationToken cancellationToken = default);

    /// <summary>Clears the stored value (keeping the version counter) and resets <see cref="State"/>.</summary>
    Task ClearStateAsync(CancellationToken cancellationToken = default);

    /// <summary>Clears the stored value as <see cref="ClearStateAsync(CancellationToken)"/> does, appending
    /// <paramref name="records"/> to the metadata log in the same transaction.</summary>
    Task ClearStateAsync(IReadOnlyList<Persistence.LogRecord> records, CancellationToken cancellationToken = default);
}
