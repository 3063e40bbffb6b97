namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresOffsetStore
{
    // A commit is durable when its task completes, whatever the session's default: a session with synchronous_commit
    // off gets it on for this transaction only. Any other value (on, local, remote_write, remote_apply) flushes
    // locally at least and is kept, so a stronger server setting is never weakened.
    //
    // The batch's statements also run their generic plans, with lookups by key pinned (KeyLookupPlans): the compaction
    // finds a group's rows through the primary key whatever the table's statistics say, and nothing is planned per
    // batch (planning cost about as much as running a small batch).
    internal const string BatchSettingsSql =
        $"""
        SELECT set_config('plan_cache_mode', 'force_generic_plan', true), {KeyLookupPlans.Settings},
               CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'on', true) END
        """;

    // A rewrite that only compacts changes no offset, so its commit does not wait for the flush.
    internal const string BatchKeyLookupAsynchronousSql =
        $"SELECT set_config('plan_cache_mode', 'force_generic_plan', true), {KeyLookupPlans.Settings}, set_config('synchronous_commit', 'off', true)";

    // One statement per batch, in the implicit transaction of its round trip: one row appended per group of the batch
    // (009_consumer_offset_log.sql), holding every partition the group's calls in the batch committed, encoded by
    // OffsetLogEncoding ($3[i] is group $2[i]'s row).
    //
    // The writer's membership row is locked FOR KEY SHARE first, as in PostgresGrainStorage's WriteSql (which says why:
    // heartbeats never wait for it, a declaration of death waits for the batch or makes it write nothing).
    internal const string CommitSql =
        """
        WITH writer AS MATERIALIZED (
            SELECT ($4::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $4 AND m.generation = $5 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        appended AS (
            INSERT INTO consumer_offset_log (cluster_id, group_id, entries)
            SELECT $1, g.group_id, g.entries
            FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS g(group_id, entries, ord)
            WHERE (SELECT alive FROM writer)
            ORDER BY g.ord
            RETURNING 1
        )
        SELECT (SELECT alive FROM writer) AS alive, (SELECT count(*) FROM appended) AS appended
        """;

    // The writer fence on its own, for the transactions that rewrite groups (PostgresOffsetStore.Rewrite.cs): the
    // membership row stays locked FOR KEY SHARE until the transaction ends, and a transaction that finds it Dead is
    // rolled back.
    internal const string FenceSql =
        """
        SELECT ($2::text IS NULL OR EXISTS (
            SELECT 1 FROM membership AS m
            WHERE m.cluster_id = $1 AND m.endpoint = $2 AND m.generation = $3 AND m.status <> 'Dead'
            FOR KEY SHARE OF m)) AS alive
        """;

    // A rewrite's first half: takes every row of groups $2 that the statement's snapshot sees, for the store to fold
    // (newest entry of each partition) and write back as one row per group (InsertRewrittenSql). A row another owner
    // of the group appends meanwhile is not seen and stays; the rewritten row keeps every entry's own number, so the
    // newest entry of each partition still wins over both.
    internal const string TakeRowsSql =
        """
        DELETE FROM consumer_offset_log AS o
        WHERE o.cluster_id = $1 AND o.group_id = ANY ($2::text[])
        RETURNING o.group_id, o.seq, o.committed_at, o.entries
        """;

    // A rewrite's second half: one row per group, each entry with the number and commit time it had.
    internal const string InsertRewrittenSql =
        """
        INSERT INTO consumer_offset_log (cluster_id, group_id, entries)
        SELECT $1, g.group_id, g.entries FROM unnest($2::text[], $3::bytea[]) AS g(group_id, entries)
        """;

    // A group's rows, oldest first, for the store to fold.
    private const string ReadSql =
        """
        SELECT o.group_id, o.seq, o.committed_at, o.entries
        FROM consumer_offset_log AS o
        WHERE o.cluster_id = $1 AND o.group_id = $2
        ORDER BY o.seq
        """;

    // The distinct group ids after $2 (NULL: from the first), up to $3 of them, in ordinal order: a walk along the
    // primary key that jumps from one group's first row to the next group's (one index probe per group listed), since
    // PostgreSQL 15 cannot skip through an index by itself. A recursive query's rows are made as the LIMIT asks for
    // them, so a page costs its own groups only.
    private const string ListGroupsSql =
        """
        WITH RECURSIVE listed(group_id) AS (
            (SELECT o.group_id FROM consumer_offset_log AS o
             WHERE o.cluster_id = $1 AND ($2::text IS NULL OR o.group_id > $2::text)
             ORDER BY o.group_id
             LIMIT 1)
            UNION ALL
            SELECT (SELECT o.group_id FROM consumer_offset_log AS o
                    WHERE o.cluster_id = $1 AND o.group_id > l.group_id
                    ORDER BY o.group_id
                    LIMIT 1)
            FROM listed AS l
            WHERE l.group_id IS NOT NULL
        )
        SELECT group_id FROM listed WHERE group_id IS NOT NULL LIMIT $3
        """;
}
