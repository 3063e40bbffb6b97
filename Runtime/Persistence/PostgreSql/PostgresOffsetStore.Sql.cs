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

    // One statement per batch, in the implicit transaction of its round trip: one row appended per group of the batch
    // (009_consumer_offset_log.sql), holding every partition the group's calls in the batch committed. The entries of
    // all groups travel as one set of parallel arrays ($5..$10), and group i's entries are the slice $3[i]..$4[i] of
    // each. $10 is NULL when no entry of the batch has metadata.
    //
    // The writer's membership row is locked FOR KEY SHARE first, as in PostgresGrainStorage's WriteSql (which says why:
    // heartbeats never wait for it, a declaration of death waits for the batch or makes it write nothing).
    internal const string CommitSql =
        """
        WITH writer AS MATERIALIZED (
            SELECT ($11::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $11 AND m.generation = $12 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        appended AS (
            INSERT INTO consumer_offset_log (cluster_id, group_id, topic_ids, topics, partitions, offsets, leader_epochs, metadata)
            SELECT $1, g.group_id,
                   ($5::uuid[])[g.first:g.last], ($6::text[])[g.first:g.last], ($7::int[])[g.first:g.last],
                   ($8::bigint[])[g.first:g.last], ($9::int[])[g.first:g.last], ($10::text[])[g.first:g.last]
            FROM unnest($2::text[], $3::int[], $4::int[]) WITH ORDINALITY AS g(group_id, first, last, ord)
            WHERE (SELECT alive FROM writer)
            ORDER BY g.ord
            RETURNING 1
        )
        SELECT (SELECT alive FROM writer) AS alive, (SELECT count(*) FROM appended) AS appended
        """;

    // Rewrites the rows of groups $2 as one row each: the newest entry of every partition (the highest number, its
    // own or, in a compacted row, the one it kept), less the partitions removed ($3/$4, or every one when $5). A group
    // left with no entry has no row. Used to compact groups in a commit batch's transaction (after its append, which
    // it sees) and to delete offsets. Fenced like CommitSql.
    //
    // It deletes only rows its snapshot sees. A row another owner of the group appends meanwhile stays, and since the
    // rewritten row keeps every entry's number, the newest entry of each partition still wins over both.
    // One row per group of $2 comes back: the partitions kept and the partitions removed.
    internal const string RewriteSql =
        """
        WITH writer AS MATERIALIZED (
            SELECT ($6::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $6 AND m.generation = $7 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        old AS MATERIALIZED (
            DELETE FROM consumer_offset_log AS o
            WHERE (SELECT alive FROM writer) AND o.cluster_id = $1 AND o.group_id = ANY ($2::text[])
            RETURNING o.group_id, o.seq, o.committed_at, o.topic_ids, o.topics, o.partitions, o.offsets, o.leader_epochs,
                      o.metadata, o.entry_seqs, o.entry_committed_at
        ),
        entry AS MATERIALIZED (
            SELECT DISTINCT ON (o.group_id, e.topic_id, e.partition)
                   o.group_id, e.topic_id, e.topic, e.partition, e.committed_offset, e.leader_epoch, e.metadata,
                   coalesce(e.seq, o.seq) AS seq, coalesce(e.committed_at, o.committed_at) AS committed_at
            FROM old AS o
            CROSS JOIN LATERAL unnest(o.topic_ids, o.topics, o.partitions, o.offsets, o.leader_epochs, o.metadata,
                                      o.entry_seqs, o.entry_committed_at)
                AS e(topic_id, topic, partition, committed_offset, leader_epoch, metadata, seq, committed_at)
            ORDER BY o.group_id, e.topic_id, e.partition, coalesce(e.seq, o.seq) DESC
        ),
        kept AS (
            SELECT e.* FROM entry AS e
            WHERE NOT $5::boolean AND NOT EXISTS (
                SELECT 1 FROM unnest($3::uuid[], $4::int[]) AS r(topic_id, partition)
                WHERE r.topic_id = e.topic_id AND r.partition = e.partition)
        ),
        rewritten AS (
            INSERT INTO consumer_offset_log
                (cluster_id, group_id, committed_at, topic_ids, topics, partitions, offsets, leader_epochs, metadata,
                 entry_seqs, entry_committed_at)
            SELECT $1, k.group_id, max(k.committed_at),
                   array_agg(k.topic_id ORDER BY k.topic_id, k.partition),
                   array_agg(k.topic ORDER BY k.topic_id, k.partition),
                   array_agg(k.partition ORDER BY k.topic_id, k.partition),
                   array_agg(k.committed_offset ORDER BY k.topic_id, k.partition),
                   array_agg(k.leader_epoch ORDER BY k.topic_id, k.partition),
                   CASE WHEN bool_or(k.metadata IS NOT NULL) THEN array_agg(k.metadata ORDER BY k.topic_id, k.partition) END,
                   array_agg(k.seq ORDER BY k.topic_id, k.partition),
                   array_agg(k.committed_at ORDER BY k.topic_id, k.partition)
            FROM kept AS k
            GROUP BY k.group_id
            RETURNING group_id, cardinality(partitions) AS live
        )
        SELECT (SELECT alive FROM writer) AS alive, g.group_id, coalesce(r.live, 0) AS live,
               (SELECT count(*) FROM entry AS e WHERE e.group_id = g.group_id) - coalesce(r.live, 0) AS removed
        FROM unnest($2::text[]) WITH ORDINALITY AS g(group_id, ord)
        LEFT JOIN rewritten AS r ON r.group_id = g.group_id
        ORDER BY g.ord
        """;

    // A group's offsets: the newest entry of each partition over the group's rows, in topic name (byte order, whatever
    // the database's collation), topic id and partition order. entries counts every entry of the rows, superseded
    // ones included: how far the group is from its next compaction. (Window functions run before DISTINCT ON.)
    private const string ReadSql =
        """
        SELECT f.topic_id, f.topic, f.partition, f.committed_offset, f.leader_epoch, f.metadata, f.committed_at, f.entries
        FROM (
            SELECT DISTINCT ON (e.topic_id, e.partition)
                   e.topic_id, e.topic, e.partition, e.committed_offset, e.leader_epoch, e.metadata,
                   coalesce(e.committed_at, o.committed_at) AS committed_at, count(*) OVER () AS entries
            FROM consumer_offset_log AS o
            CROSS JOIN LATERAL unnest(o.topic_ids, o.topics, o.partitions, o.offsets, o.leader_epochs, o.metadata,
                                      o.entry_seqs, o.entry_committed_at)
                AS e(topic_id, topic, partition, committed_offset, leader_epoch, metadata, seq, committed_at)
            WHERE o.cluster_id = $1 AND o.group_id = $2
            ORDER BY e.topic_id, e.partition, coalesce(e.seq, o.seq) DESC
        ) AS f
        ORDER BY f.topic COLLATE "C", f.topic_id, f.partition
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
