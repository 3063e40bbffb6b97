using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// Metadata image snapshots and log retention in PostgreSQL (tables <c>metadata_snapshot</c> and
/// <c>metadata_snapshot_chunk</c>, 007_metadata_snapshots.sql), for one cluster.
/// </summary>
/// <remarks>
/// Retention never touches <c>metadata_log_head</c> (the row appends hold while they hand out offsets) nor
/// <c>metadata_log_durable</c>: it deletes rows of <c>metadata_log</c> far below the head, which no append inserts or
/// locks, so appends never wait for it. Each batch is one statement and one short transaction.
/// </remarks>
public sealed class PostgresMetadataSnapshots : IMetadataSnapshotStore
{
    /// <summary>The size of one stored chunk. Large enough that a 1M-partition image takes a handful of rows, small
    /// enough that neither side ever holds one huge value.</summary>
    internal const int ChunkSize = 4 * 1024 * 1024;

    private const string ListSql =
        "SELECT snapshot_offset, format_version, length, written_at FROM metadata_snapshot WHERE cluster_id = $1 ORDER BY snapshot_offset DESC";

    // One statement, so it reads the header and every chunk in one MVCC snapshot: a snapshot deleted meanwhile is
    // either read whole or not at all.
    private const string ReadSql =
        """
        SELECT s.chunk_count, s.length, s.sha256, c.chunk_index, c.data
        FROM metadata_snapshot AS s
        LEFT JOIN metadata_snapshot_chunk AS c ON c.cluster_id = s.cluster_id AND c.snapshot_offset = s.snapshot_offset
        WHERE s.cluster_id = $1 AND s.snapshot_offset = $2
        ORDER BY c.chunk_index
        """;

    private const string InsertHeaderSql =
        """
        INSERT INTO metadata_snapshot (cluster_id, snapshot_offset, format_version, chunk_count, length, sha256)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
        """;

    private const string InsertChunkSql =
        "INSERT INTO metadata_snapshot_chunk (cluster_id, snapshot_offset, chunk_index, data) VALUES ($1, $2, $3, $4)";

    private const string DeleteOldSql =
        """
        DELETE FROM metadata_snapshot WHERE cluster_id = $1 AND snapshot_offset < (
            SELECT min(snapshot_offset) FROM (
                SELECT snapshot_offset FROM metadata_snapshot WHERE cluster_id = $1 ORDER BY snapshot_offset DESC LIMIT $2) AS kept)
        """;

    /// <summary>
    /// One retention batch: from the lowest retained record, at most $3 records, never past the oldest stored snapshot
    /// (no snapshot: nothing), and stopping before the first record written less than $2 ago. written_at is the
    /// appending transaction's start, which is not strictly ordered by offset: the batch stops at the first young
    /// record rather than skipping it, so what stays is always a suffix of the log. The range scans use the primary key.
    /// </summary>
    internal const string DeletePrefixSql =
        """
        WITH bounds AS (
            SELECT coalesce((SELECT min(log_offset) FROM metadata_log WHERE cluster_id = $1), 1) - 1 AS retained_after,
                   coalesce((SELECT min(snapshot_offset) FROM metadata_snapshot WHERE cluster_id = $1), 0) AS snapshot_offset
        ), range AS (
            SELECT retained_after, least(retained_after + $3, snapshot_offset) AS through FROM bounds
        ), young AS (
            SELECT min(m.log_offset) AS first_young FROM metadata_log AS m, range
            WHERE m.cluster_id = $1 AND m.log_offset > range.retained_after AND m.log_offset <= range.through
              AND m.written_at >= now() - $2
        )
        DELETE FROM metadata_log AS m USING range, young
        WHERE m.cluster_id = $1 AND m.log_offset > range.retained_after
          AND m.log_offset <= coalesce(young.first_young - 1, range.through)
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _clusterId;

    /// <summary>Creates the store for the cluster named in <paramref name="options"/>. It does not own <paramref name="dataSource"/>.</summary>
    public PostgresMetadataSnapshots(NpgsqlDataSource dataSource, IOptions<PostgresStorageOptions> options)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Value.ClusterId);
        _dataSource = dataSource;
        _clusterId = options.Value.ClusterId;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<MetadataSnapshotInfo>> ListAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(ListSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var snapshots = new List<MetadataSnapshotInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            snapshots.Add(new MetadataSnapshotInfo(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3)));
        }

        return snapshots;
    }

    /// <inheritdoc />
    public async Task<byte[]?> ReadAsync(long offset, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(ReadSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = offset });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        byte[]? data = null;
        byte[]? expected = null;
        int chunks = 0, found = 0;
        long written = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (data is null)
            {
                chunks = reader.GetInt32(0);
                var length = reader.GetInt64(1);
                if (length < 0 || length > Array.MaxLength)
                {
                    throw new InvalidDataException($"Snapshot at offset {offset} claims {length} bytes.");
                }

                data = new byte[length];
                expected = reader.GetFieldValue<byte[]>(2);
            }

            if (reader.IsDBNull(3))
            {
                break;
            }

            if (reader.GetInt32(3) != found)
            {
                throw new InvalidDataException($"Snapshot at offset {offset} lacks chunk {found}.");
            }

            var chunk = reader.GetFieldValue<byte[]>(4);
            if (written + chunk.Length > data.Length)
            {
                throw new InvalidDataException($"Snapshot at offset {offset} holds more bytes than its length {data.Length}.");
            }

            chunk.CopyTo(data, written);
            written += chunk.Length;
            found++;
        }

        if (data is null)
        {
            return null;
        }

        if (found != chunks || written != data.Length)
        {
            throw new InvalidDataException(
                $"Snapshot at offset {offset} has {found} of {chunks} chunks and {written} of {data.Length} bytes.");
        }

        if (!SHA256.HashData(data).AsSpan().SequenceEqual(expected))
        {
            throw new InvalidDataException($"Snapshot at offset {offset} does not match its checksum.");
        }

        return data;
    }

    /// <inheritdoc />
    public async Task<bool> WriteAsync(long offset, int formatVersion, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var chunkCount = (data.Length + ChunkSize - 1) / ChunkSize;
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var header = new NpgsqlCommand(InsertHeaderSql, connection, transaction))
        {
            header.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
            header.Parameters.Add(new NpgsqlParameter<long> { TypedValue = offset });
            header.Parameters.Add(new NpgsqlParameter<int> { TypedValue = formatVersion });
            header.Parameters.Add(new NpgsqlParameter<int> { TypedValue = chunkCount });
            header.Parameters.Add(new NpgsqlParameter<long> { TypedValue = data.Length });
            header.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = SHA256.HashData(data.Span) });
            if (await header.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                return false; // Written already, by this silo or another one.
            }
        }

        for (var index = 0; index < chunkCount; index++)
        {
            var start = index * ChunkSize;
            await using var chunk = new NpgsqlCommand(InsertChunkSql, connection, transaction);
            chunk.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
            chunk.Parameters.Add(new NpgsqlParameter<long> { TypedValue = offset });
            chunk.Parameters.Add(new NpgsqlParameter<int> { TypedValue = index });
            chunk.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>
            {
                NpgsqlDbType = NpgsqlDbType.Bytea,
                TypedValue = data.Slice(start, Math.Min(ChunkSize, data.Length - start)),
            });
            await chunk.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc />
    public async Task<int> DeleteOldSnapshotsAsync(int keep, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        await using var command = _dataSource.CreateCommand(DeleteOldSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = keep });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<long> DeleteLogPrefixAsync(TimeSpan olderThan, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(olderThan, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        long total = 0;
        while (true)
        {
            await using var command = _dataSource.CreateCommand(DeletePrefixSql);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _clusterId });
            command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = olderThan });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batchSize });
            var deleted = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < batchSize)
            {
                return total; // Reached the oldest snapshot or a record too young to go.
            }
        }
    }
}
