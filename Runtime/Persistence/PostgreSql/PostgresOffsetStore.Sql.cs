namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresOffsetStore
{
    // A commit is durable when its task completes, whatever the session's default: a session with synchronous_commit
    // off gets it on for this transaction only. Any other value (on, local, remote_write, remote_apply) flushes
    // locally at least and is kept, so a stronger server setting is never weakened.
    //
    // The batch statement also runs its generic plan, whatever the batch's size. Custom plans, which PostgreSQL makes
    // for the first five runs of a prepared statement and keeps making while they look cheaper, cost 1-3 ms of planning
    // per batch, and for a batch of 150 rows or more over a table of tens of thousands of offsets they join the input
    // by hashing the whole table (a sequential scan of every offset row for each batch, growing with the table). The
    // generic plan looks every row up through the primary key: measured with 150 rows over 10k offsets, 1.1 ms against
    // 2.9 ms for the custom plan's run alone; with 1000 rows, 6.5 against 7.7-8.6 ms. The generic plan is made once per
    // connection, from the statistics of that moment, so the lookup is pinned as the only plan left (KeyLookupPlans).
    internal const string BatchSettingsSql =
        $"""
        SELECT set_config('plan_cache_mode', 'force_generic_plan', true), {KeyLookupPlans.Settings},
               CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'on', true) END
        """;

    // One statement per batch, in the implicit transaction of its round trip. The writer's membership row is locked
    // FOR KEY SHARE first, as in PostgresGrainStorage's WriteSql (which says why: heartbeats never wait for it, a
    // declaration of death waits for the batch or makes it write nothing). Input rows are distinct: the store dedupes
    // them, since neither an UPDATE nor ON CONFLICT may touch one row twice.
    //
    // Rows that exist (every commit but a partition's first) are updated through the primary key; only the others go
    // through INSERT ... ON CONFLICT, which stays for a row another silo inserted after this statement's snapshot (two
    // owners of a group for a moment). An upsert of an existing row costs about twice a plain update: it probes the
    // index for a conflict, locks the row (a WAL record of its own), then updates it (measured: 15-20 ms against
    // 5-9 ms per 1000 rows). A commit changes no indexed column, so the update is HOT (005_consumer_offsets.sql).
    //
    // The group summary (consumer_group_commits) has one row per group with offsets, which is what silos page through to
    // load the groups they own (ListGroupsSql). Only groups that got a new offset row here may lack one (probing the
    // others cost 2 ms per 1000 groups); an existing summary row is never touched by a commit.
    // The insert's anti-join (sorting every input row and every updated one) is skipped as a whole when every row was
    // updated, which is every batch once a group's partitions have their first offsets.
    //
    // Unreferenced data-modifying CTEs run to completion after the main query.
    internal const string CommitSql =
        """
        WITH writer AS MATERIALIZED (
            SELECT ($9::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $9 AND m.generation = $10 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        input AS (
            SELECT $1::text AS cluster_id, t.group_id, t.topic_id, t.partition, t.topic, t.committed_offset, t.leader_epoch, t.metadata
            FROM unnest($2::text[], $3::uuid[], $4::int[], $5::text[], $6::bigint[], $7::int[], $8::text[])
                AS t(group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata)
        ),
        updated AS (
            UPDATE consumer_offsets AS o
            SET topic = i.topic, committed_offset = i.committed_offset, leader_epoch = i.leader_epoch,
                metadata = i.metadata, committed_at = now()
            FROM input AS i
            WHERE (SELECT alive FROM writer)
              AND o.cluster_id = i.cluster_id AND o.group_id = i.group_id AND o.topic_id = i.topic_id AND o.partition = i.partition
            RETURNING o.group_id, o.topic_id, o.partition
        ),
        inserted AS (
            INSERT INTO consumer_offsets AS o
                (cluster_id, group_id, topic_id, partition, topic, committed_offset, leader_epoch, metadata, committed_at)
            SELECT $1, i.group_id, i.topic_id, i.partition, i.topic, i.committed_offset, i.leader_epoch, i.metadata, now()
            FROM input AS i
            WHERE (SELECT alive FROM writer)
              AND (SELECT count(*) FROM updated) < cardinality($2::text[])
              AND NOT EXISTS (
                  SELECT 1 FROM updated AS u
                  WHERE u.group_id = i.group_id AND u.topic_id = i.topic_id AND u.partition = i.partition)
            ORDER BY i.group_id, i.topic_id, i.partition
            ON CONFLICT (cluster_id, group_id, topic_id, partition) DO UPDATE
            SET topic = excluded.topic, committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch,
                metadata = excluded.metadata, committed_at = excluded.committed_at
            RETURNING o.group_id
        ),
        group_added AS (
            INSERT INTO consumer_group_commits AS g (cluster_id, group_id)
            SELECT DISTINCT $1, n.group_id
            FROM inserted AS n
            ORDER BY 2
            ON CONFLICT (cluster_id, group_id) DO NOTHING
        )
        SELECT (SELECT alive FROM writer) AS alive, (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted) AS written
        """;

    // Topic names in byte order, so that the order does not depend on the database's collation.
    private const string ReadSql =
        """
        SELECT o.topic_id, o.topic, o.partition, o.committed_offset, o.leader_epoch, o.metadata, o.committed_at
        FROM consumer_offsets AS o
        WHERE o.cluster_id = $1 AND o.group_id = $2
        ORDER BY o.topic COLLATE "C", o.topic_id, o.partition
        """;

    // Fenced like CommitSql. $3/$4 are NULL to delete every offset of the group.
    private const string DeleteSql =
        """
        WITH writer AS MATERIALIZED (
            SELECT ($5::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $5 AND m.generation = $6 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        deleted AS (
            DELETE FROM consumer_offsets AS o
            WHERE (SELECT alive FROM writer) AND o.cluster_id = $1 AND o.group_id = $2
              AND ($3::uuid[] IS NULL OR (o.topic_id, o.partition) IN (
                  SELECT k.topic_id, k.partition FROM unnest($3::uuid[], $4::int[]) AS k(topic_id, partition)))
            RETURNING 1
        )
        SELECT (SELECT alive FROM writer) AS alive, (SELECT count(*) FROM deleted) AS deleted
        """;

    // After a delete, in its transaction: the group's summary row goes when no offset of the group is left.
    private const string DropEmptyGroupSql =
        """
        DELETE FROM consumer_group_commits AS g
        WHERE g.cluster_id = $1 AND g.group_id = $2
          AND NOT EXISTS (SELECT 1 FROM consumer_offsets AS o WHERE o.cluster_id = $1 AND o.group_id = $2)
        """;

    // The summary table has one row per group with offsets. "C" collation: ordinal order, as the in-memory store and
    // .NET's ordinal comparison give, whatever the database's default collation.
    private const string ListGroupsSql =
        """
        SELECT group_id
        FROM consumer_group_commits
        WHERE cluster_id = $1 AND ($2::text IS NULL OR group_id COLLATE "C" > $2::text COLLATE "C")
        ORDER BY group_id COLLATE "C"
        LIMIT $3
        """;
}
