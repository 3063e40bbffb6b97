namespace OrleansMeta.Runtime.Persistence;

/// <summary>A stored snapshot of the metadata image, as listed (without its data).</summary>
/// <param name="Offset">The log offset the snapshot's image has reached: every record up to it applied, none after.</param>
/// <param name="FormatVersion">The layout of the snapshot's bytes; readers skip versions they do not know.</param>
/// <param name="Length">The snapshot's size in bytes, as stored.</param>
/// <param name="WrittenAt">When it was written, on the database's clock.</param>
public sealed record MetadataSnapshotInfo(long Offset, int FormatVersion, long Length, DateTimeOffset WrittenAt);

/// <summary>
/// Snapshots of the metadata image and retention of the metadata log they make unnecessary. The store deals in opaque
/// bytes (the image's layout belongs to the grains that build it) and guards their integrity: every snapshot carries a
/// checksum that <see cref="ReadAsync"/> verifies.
/// </summary>
/// <remarks>
/// Retention deletes only a prefix of the log, and never a record a stored snapshot would need to be replayed
/// from: <see cref="DeleteLogPrefixAsync"/> stops at the oldest stored snapshot's offset. So offsets stay gap-free from
/// the lowest retained one, and <see cref="IMetadataLog.ReadAsync"/> after an offset below it returns records from
/// the lowest retained offset: a reader that gets a first record above the one it asked for knows the records in
/// between were deleted, and that a snapshot at or above them exists.
/// </remarks>
public interface IMetadataSnapshotStore
{
    /// <summary>The stored snapshots, newest (highest offset) first.</summary>
    Task<IReadOnlyList<MetadataSnapshotInfo>> ListAsync(CancellationToken cancellationToken);

    /// <summary>The bytes of the snapshot at <paramref name="offset"/>, verified against its checksum; <c>null</c> when no
    /// snapshot is stored there (any more).</summary>
    /// <exception cref="InvalidDataException">The stored bytes are not the ones written (checksum mismatch, chunks missing).</exception>
    Task<byte[]?> ReadAsync(long offset, CancellationToken cancellationToken);

    /// <summary>Stores a snapshot of the image at <paramref name="offset"/>, whole or not at all; returns false when one is
    /// stored at that offset already (it holds the same image: a snapshot is a function of the log's prefix).</summary>
    Task<bool> WriteAsync(long offset, int formatVersion, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Deletes all but the newest <paramref name="keep"/> snapshots; returns how many it deleted.</summary>
    Task<int> DeleteOldSnapshotsAsync(int keep, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the log's oldest records, at most <paramref name="batchSize"/> a statement (each its own transaction), up
    /// to and including the oldest stored snapshot's offset and only records written more than
    /// <paramref name="olderThan"/> ago (on the database's clock). Stops at the first record that must stay, so what
    /// remains is always a suffix of the log. Returns how many records it deleted.
    /// </summary>
    Task<long> DeleteLogPrefixAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken);
}
