namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// Planner settings for the batch statements that join a batch's input (an <c>unnest</c> of arrays) to a table by its
/// primary key: <c>grain_state</c> for grain writes, <c>consumer_offset_log</c> for offset compactions.
/// </summary>
/// <remarks>
/// Such a batch touches a few hundred rows of a table that may hold millions, so the only plan that stays right is one
/// primary-key lookup per input row. The planner does not always see that. It judges by the table's statistics, and a
/// table these statements fill (a new cluster's offsets, a failover's first partition writes) outgrows its statistics
/// faster than autovacuum's ANALYZE follows; a prepared statement's generic plan is worse still, as it is made once
/// and kept for the connection's life. With statistics that said "a few rows" the planner hashed the input against a
/// bitmap scan of every row of the cluster, on every batch, and the batch's cost then grew with the table (measured on
/// a 300-row offset batch over 200k offsets: 38 ms with that plan, 2 ms with key lookups; in a 100k-partition failover,
/// 512-row grain writes hashed against every partition written so far).
///
/// The statements are written so that the lookup is the only plan these settings leave enabled: the table's cluster id
/// comes from the input (a column of it, not the <c>$1</c> parameter), so the table has no condition of its own to
/// scan by, and sequential and bitmap scans are disabled for the transaction (<c>set_config(..., true)</c>). A nested
/// loop over the input with a parameterised index scan is then all that is left; hash and merge joins stay enabled
/// for the joins between the statement's own intermediate results.
/// </remarks>
internal static class KeyLookupPlans
{
    /// <summary>Select-list items that disable sequential and bitmap scans until the end of the transaction.</summary>
    internal const string Settings = "set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)";
}
