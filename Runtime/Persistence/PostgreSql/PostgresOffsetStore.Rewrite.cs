using System.Data.Common;
using Npgsql;
using NpgsqlTypes;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresOffsetStore
{
    /// <summary>
    /// Rewrites each of <paramref name="groupIds"/>' rows as one row (or none, when nothing is left): the newest entry
    /// of every partition, less <paramref name="removed"/> (every partition when <paramref name="removeAll"/>). One
    /// transaction, fenced by the writer's membership row; the rows are folded here, where it costs a dictionary
    /// lookup per entry, rather than in a statement that sorted every entry (2-3 ms per compaction of 800 entries).
    /// Returns null when the writer was fenced (nothing changed); otherwise, per group, the partitions kept and removed.
    /// </summary>
    /// <param name="durable">Whether the commit waits for its flush. A compaction changes no offset, so it does not.</param>
    private async Task<Dictionary<string, (long Kept, long Removed)>?> RewriteAsync(
        IReadOnlyList<string> groupIds, IReadOnlyCollection<OffsetKey>? removed, bool removeAll, bool durable, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        Dictionary<string, Dictionary<OffsetKey, LogEntry>> folded;
        await using (var take = new NpgsqlBatch(connection, transaction))
        {
            take.BatchCommands.Add(new NpgsqlBatchCommand(durable ? BatchSettingsSql : BatchKeyLookupAsynchronousSql));
            var fence = new NpgsqlBatchCommand(FenceSql);
            fence.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
            AddWriterParameters(fence.Parameters);
            take.BatchCommands.Add(fence);
            var rows = new NpgsqlBatchCommand(TakeRowsSql);
            rows.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
            rows.Parameters.Add(ArrayParameter(groupIds.ToArray(), NpgsqlDbType.Text));
            take.BatchCommands.Add(rows);
            await take.PrepareAsync(cancellationToken).ConfigureAwait(false);
            await using var reader = await take.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (!reader.GetBoolean(0))
            {
                await reader.DisposeAsync().ConfigureAwait(false);
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return null;
            }

            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            folded = await FoldAsync(reader, cancellationToken).ConfigureAwait(false);
        }

        var outcome = new Dictionary<string, (long Kept, long Removed)>(StringComparer.Ordinal);
        var kept = new List<(string GroupId, List<LogEntry> Entries)>();
        foreach (var groupId in groupIds)
        {
            var entries = folded.GetValueOrDefault(groupId);
            var left = new List<LogEntry>();
            foreach (var entry in entries?.Values ?? Enumerable.Empty<LogEntry>())
            {
                if (!removeAll && (removed is null || !removed.Contains(entry.Key)))
                {
                    left.Add(entry);
                }
            }

            outcome[groupId] = (left.Count, (entries?.Count ?? 0) - left.Count);
            if (left.Count > 0)
            {
                kept.Add((groupId, left));
            }
        }

        if (kept.Count > 0)
        {
            await using var insert = new NpgsqlCommand(InsertRewrittenSql, connection, transaction);
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ClusterId });
            insert.Parameters.Add(ArrayParameter(kept.Select(group => group.GroupId).ToArray(), NpgsqlDbType.Text));
            insert.Parameters.Add(ArrayParameter(kept.Select(group => OffsetLogEncoding.Encode(group.Entries, numbers: true)).ToArray(), NpgsqlDbType.Bytea));
            await insert.PrepareAsync(cancellationToken).ConfigureAwait(false);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return outcome;
    }

    /// <summary>
    /// Folds the rows a reader returns (<see cref="ReadSql"/>'s or <see cref="TakeRowsSql"/>'s columns) into the newest
    /// entry of each partition, per group: the entry with the highest number, its row's or the one a rewrite kept.
    /// </summary>
    /// <param name="entriesRead">Told the entries of each row read, superseded ones included.</param>
    private static async Task<Dictionary<string, Dictionary<OffsetKey, LogEntry>>> FoldAsync(
        DbDataReader reader, CancellationToken cancellationToken, Action<int>? entriesRead = null)
    {
        var groups = new Dictionary<string, Dictionary<OffsetKey, LogEntry>>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var groupId = reader.GetString(0);
            if (!groups.TryGetValue(groupId, out var entries))
            {
                groups[groupId] = entries = [];
            }

            var count = OffsetLogEncoding.DecodeInto(
                reader.GetFieldValue<byte[]>(3), reader.GetInt64(1), reader.GetFieldValue<DateTimeOffset>(2), entries);
            entriesRead?.Invoke(count);
        }

        return groups;
    }
}
