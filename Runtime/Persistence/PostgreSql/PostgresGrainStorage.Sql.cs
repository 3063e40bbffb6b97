namespace OrleansMeta.Runtime.Persistence.PostgreSql;

public sealed partial class PostgresGrainStorage
{
    // One statement per batch, so one round trip and one (implicit) transaction. Updates match only rows still at the
    // expected version; inserts (expected 0) lose to an existing row. The final SELECT returns one row per input:
    // new_version when it won, otherwise the version the statement's snapshot saw, for the conflict message.
    // Used for batches without fences or records: it never touches the metadata log or its head row.
    //
    // Inserts are picked with "expected < 1", not "= 0" (versions are never negative, so it means the same): the
    // planner has no statistics for unnest's output and guesses that an equality keeps 0.5% of the rows, so it
    // estimated two inserted rows and joined them back to the input with a nested loop, comparing every inserted
    // row with every input row (a 512-row batch of first writes spent 62 of its 71 ms there). An inequality is
    // guessed at a third of the rows, which makes it choose a hash join (14 ms).
    //
    // Both statements are fenced by the writing silo's membership row ($7/$8 here, $17/$18 below; NULL when storage
    // runs outside a cluster). The row is locked FOR KEY SHARE, which heartbeats (plain UPDATEs of non-key columns)
    // never wait for, while declaring a silo dead locks it FOR UPDATE first (MembershipTable). So a batch either
    // commits before the silo is declared dead, or waits for that change, re-reads the row, finds it Dead and writes
    // nothing. The rule this gives (DESIGN, "one owner"): once a silo is Dead in the table, no write of its commits,
    // and the grains' new owners, which activate only after reading it Dead, load everything it ever committed.
    //
    // The input carries the cluster id as a column, and the batch runs under KeyLookupPlans' settings, so that every
    // row is found through the primary key whatever the table's statistics say.
    internal const string WriteSql =
        """
        WITH input AS (
            SELECT t.ord, $1::text AS cluster_id, t.grain_type, t.grain_key, t.state_name, t.payload, t.expected
            FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[]) WITH ORDINALITY
                AS t(grain_type, grain_key, state_name, payload, expected, ord)
        ),
        writer AS MATERIALIZED (
            SELECT ($7::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $7 AND m.generation = $8 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        updated AS (
            UPDATE grain_state AS g
            SET version = g.version + 1, payload = i.payload, updated_at = now()
            FROM input AS i
            WHERE i.expected > 0 AND (SELECT alive FROM writer)
              AND g.cluster_id = i.cluster_id AND g.grain_type = i.grain_type AND g.grain_key = i.grain_key
              AND g.state_name = i.state_name AND g.version = i.expected
            RETURNING i.ord, g.version
        ),
        inserted AS (
            INSERT INTO grain_state AS g (cluster_id, grain_type, grain_key, state_name, version, payload)
            SELECT $1, i.grain_type, i.grain_key, i.state_name, 1, i.payload
            FROM input AS i
            WHERE i.expected < 1 AND (SELECT alive FROM writer)
            ORDER BY i.ord
            ON CONFLICT DO NOTHING
            RETURNING g.grain_type, g.grain_key, g.state_name, g.version
        ),
        written AS (
            SELECT u.ord, u.version FROM updated AS u
            UNION ALL
            SELECT i.ord, n.version
            FROM inserted AS n
            JOIN input AS i ON i.expected < 1 AND i.grain_type = n.grain_type AND i.grain_key = n.grain_key
                AND i.state_name = n.state_name
        )
        SELECT i.ord, w.version AS new_version, s.version AS seen_version, (SELECT alive FROM writer) AS writer_alive
        FROM input AS i
        LEFT JOIN written AS w ON w.ord = i.ord
        LEFT JOIN LATERAL (
            -- One primary-key lookup per write that was not written (see fence_row below); LIMIT keeps the planner from
            -- flattening it into a join.
            SELECT s.version FROM grain_state AS s
            WHERE w.version IS NULL AND s.cluster_id = $1 AND s.grain_type = i.grain_type AND s.grain_key = i.grain_key AND s.state_name = i.state_name
            LIMIT 1
        ) AS s ON true
        """;

    // The same compare-and-set, plus fences and log records, still one statement and one transaction. The order of
    // work follows from what each step reads, which is what makes it safe:
    //  1. fence_row locks every fence row FOR SHARE, in key order, each found by its own primary-key lookup (LATERAL):
    //     a batch of controller decisions names one fence row 512 times, and a join left to the planner hashed every
    //     row of the cluster to find it whenever its statistics were older than the cluster (measured: 80 ms per batch
    //     at 30k rows in a failover, growing with the cluster). Under READ COMMITTED a row lock waits for a
    //     concurrent writer of the row and then returns the newest committed version, so the check below sees the
    //     fence as it is now, and the lock keeps it there until this transaction commits: a controller-epoch bump
    //     commits either before this check (the write is fenced) or after this commit (its records come later).
    //  2. broken checks each distinct fence (row and version) once, against fence_row (a missing row counts as
    //     version 0); fenced picks, per write, its first fence among those. Most batches break none, and joining to
    //     an empty set costs nothing, where checking all 1,536 fences of a 512-write AlterPartition batch one by one
    //     (sorted and merged) took 2.5 ms of its 16.
    //  3. updated/inserted apply the compare-and-set to writes whose fences all hold.
    //  4. appended numbers the records of the writes that won, in batch order and record order within a write.
    //     head cannot start before the count over appended is known, i.e. after every row lock above is taken, so
    //     the head row is locked last and held only while the inserts finish and the transaction commits. It is an
    //     upsert so that the first append of a cluster creates the row; with no records to append it inserts
    //     nothing and takes no lock.
    //  5. logged inserts the records at last_offset - n + 1 .. last_offset.
    // A batch with records runs with synchronous_commit off (see DurableSql): it holds the head row only until its
    // commit record is written, not through the disk flush; nothing it did is acknowledged before DurableSql commits.
    // Data-modifying CTEs run to completion even when nothing reads them; fence_row is MATERIALIZED so its row locks
    // are never inlined away.
    internal const string FencedLoggedWriteSql =
        """
        WITH input AS (
            SELECT t.ord, $1::text AS cluster_id, t.grain_type, t.grain_key, t.state_name, t.payload, t.expected, t.arrival
            FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], $7::int[]) WITH ORDINALITY
                AS t(grain_type, grain_key, state_name, payload, expected, arrival, ord)
        ),
        fence AS (
            SELECT f.fence_ord, f.write_ord, f.grain_type, f.grain_key, f.state_name, f.version
            FROM unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $12::bigint[]) WITH ORDINALITY
                AS f(write_ord, grain_type, grain_key, state_name, version, fence_ord)
        ),
        writer AS MATERIALIZED (
            SELECT ($17::text IS NULL OR EXISTS (
                SELECT 1 FROM membership AS m
                WHERE m.cluster_id = $1 AND m.endpoint = $17 AND m.generation = $18 AND m.status <> 'Dead'
                FOR KEY SHARE OF m)) AS alive
        ),
        fence_row AS MATERIALIZED (
            SELECT g.grain_type, g.grain_key, g.state_name, g.version
            FROM (SELECT DISTINCT f.grain_type, f.grain_key, f.state_name FROM fence AS f ORDER BY 1, 2, 3) AS k
            CROSS JOIN LATERAL (
                SELECT g.grain_type, g.grain_key, g.state_name, g.version
                FROM grain_state AS g
                WHERE g.cluster_id = $1 AND g.grain_type = k.grain_type AND g.grain_key = k.grain_key AND g.state_name = k.state_name
                FOR SHARE OF g
            ) AS g
        ),
        broken AS MATERIALIZED (
            SELECT k.grain_type, k.grain_key, k.state_name, k.version, coalesce(r.version, 0) AS found
            FROM (SELECT DISTINCT f.grain_type, f.grain_key, f.state_name, f.version FROM fence AS f) AS k
            LEFT JOIN fence_row AS r ON r.grain_type = k.grain_type AND r.grain_key = k.grain_key AND r.state_name = k.state_name
            WHERE coalesce(r.version, 0) <> k.version
        ),
        fenced AS MATERIALIZED (
            SELECT DISTINCT ON (f.write_ord) f.write_ord, f.fence_ord, b.found
            FROM fence AS f
            JOIN broken AS b ON b.grain_type = f.grain_type AND b.grain_key = f.grain_key AND b.state_name = f.state_name AND b.version = f.version
            ORDER BY f.write_ord, f.fence_ord
        ),
        updated AS (
            UPDATE grain_state AS g
            SET version = g.version + 1, payload = i.payload, updated_at = now()
            FROM input AS i
            WHERE i.expected > 0 AND (SELECT alive FROM writer)
              AND NOT EXISTS (SELECT 1 FROM fenced AS x WHERE x.write_ord = i.ord)
              AND g.cluster_id = i.cluster_id AND g.grain_type = i.grain_type AND g.grain_key = i.grain_key
              AND g.state_name = i.state_name AND g.version = i.expected
            RETURNING i.ord, g.version
        ),
        inserted AS (
            INSERT INTO grain_state AS g (cluster_id, grain_type, grain_key, state_name, version, payload)
            SELECT $1, i.grain_type, i.grain_key, i.state_name, 1, i.payload
            FROM input AS i
            WHERE i.expected < 1 AND (SELECT alive FROM writer)
              AND NOT EXISTS (SELECT 1 FROM fenced AS x WHERE x.write_ord = i.ord)
            ORDER BY i.ord
            ON CONFLICT DO NOTHING
            RETURNING g.grain_type, g.grain_key, g.state_name, g.version
        ),
        written AS (
            SELECT u.ord, u.version FROM updated AS u
            UNION ALL
            SELECT i.ord, n.version
            FROM inserted AS n
            JOIN input AS i ON i.expected < 1 AND i.grain_type = n.grain_type AND i.grain_key = n.grain_key
                AND i.state_name = n.state_name
        ),
        record AS (
            SELECT r.record_ord, r.write_ord, r.type, r.key, r.payload
            FROM unnest($13::bigint[], $14::text[], $15::text[], $16::bytea[]) WITH ORDINALITY
                AS r(write_ord, type, key, payload, record_ord)
        ),
        appended AS MATERIALIZED (
            SELECT r.write_ord, r.type, r.key, r.payload,
                   row_number() OVER (ORDER BY i.arrival, r.record_ord) AS n,
                   count(*) OVER () AS total
            FROM record AS r
            JOIN written AS w ON w.ord = r.write_ord
            JOIN input AS i ON i.ord = r.write_ord
        ),
        head AS (
            INSERT INTO metadata_log_head AS h (cluster_id, last_offset)
            SELECT $1, count(*) FROM appended HAVING count(*) > 0
            ON CONFLICT (cluster_id) DO UPDATE SET last_offset = h.last_offset + excluded.last_offset
            RETURNING h.last_offset
        ),
        logged AS (
            INSERT INTO metadata_log (cluster_id, log_offset, type, key, payload)
            SELECT $1, h.last_offset - a.total + a.n, a.type, a.key, a.payload
            FROM appended AS a CROSS JOIN head AS h
            RETURNING log_offset
        ),
        last_record AS (
            SELECT a.write_ord, h.last_offset - max(a.total) + max(a.n) AS last_offset
            FROM appended AS a CROSS JOIN head AS h
            GROUP BY a.write_ord, h.last_offset
        )
        SELECT i.ord, w.version AS new_version, s.version AS seen_version, (SELECT alive FROM writer) AS writer_alive,
               x.fence_ord, x.found, l.last_offset
        FROM input AS i
        LEFT JOIN written AS w ON w.ord = i.ord
        LEFT JOIN fenced AS x ON x.write_ord = i.ord
        LEFT JOIN last_record AS l ON l.write_ord = i.ord
        LEFT JOIN LATERAL (
            -- One primary-key lookup per write that was not written, as for fence_row; LIMIT keeps the planner from
            -- flattening it into a join.
            SELECT s.version FROM grain_state AS s
            WHERE w.version IS NULL AND s.cluster_id = $1 AND s.grain_type = i.grain_type AND s.grain_key = i.grain_key AND s.state_name = i.state_name
            LIMIT 1
        ) AS s ON true
        """;

    // Run after a batch with records committed (asynchronously), before any of its writes is acknowledged: an ordinary,
    // synchronous transaction that records the log head it reads under this writer's row of metadata_log_durable
    // (004_metadata_log_durable.sql). Its commit is flushed (and sent to a synchronous standby) only after every commit
    // before it in the WAL, so once it commits the head it read is durable, the batch's records included. It writes
    // nothing, and so costs no flush, when the durable frontier has already reached the head (another writer's
    // transaction covered this batch). greatest() because a writer's two transactions may commit out of order.
    // Readers are woken (NotifySql) only once what they may read has grown.
    private const string DurableSql =
        $"""
        WITH head AS (
            SELECT h.last_offset FROM metadata_log_head AS h WHERE h.cluster_id = $1
        ),
        frontier AS (
            SELECT {FrontierSql} AS durable
        )
        INSERT INTO metadata_log_durable AS d (cluster_id, writer, durable_offset, updated_at)
        SELECT $1, $2, head.last_offset, now() FROM head, frontier WHERE head.last_offset > frontier.durable
        ON CONFLICT (cluster_id, writer) DO UPDATE SET durable_offset = greatest(d.durable_offset, excluded.durable_offset), updated_at = now()
        RETURNING d.durable_offset
        """;

    // The wake-up for log readers, in a transaction of its own with synchronous_commit off. A transaction that
    // notifies holds a cluster-wide lock from its commit until its commit is done, flush included: in DurableSql it
    // would queue every silo's durability transactions behind one another's flushes again.
    private const string NotifySql =
        $"SELECT pg_notify('meta_log', $1 || ':' || {FrontierSql})";

    // Rows of writers that have not moved for a while and lie below the frontier say nothing the frontier does not.
    private const string PruneDurableSql =
        $"""
        DELETE FROM metadata_log_durable AS d
        WHERE d.cluster_id = $1 AND d.updated_at < now() - interval '10 minutes'
          AND d.durable_offset < {FrontierSql}
        """;

    /// <summary>
    /// The log's durable frontier for cluster <c>$1</c> (004_metadata_log_durable.sql), as a scalar subquery: the one
    /// definition every reader, the durability transaction and the wake-up use.
    /// </summary>
    internal const string FrontierSql =
        "(SELECT coalesce(max(f.durable_offset), 0) FROM metadata_log_durable AS f WHERE f.cluster_id = $1)";

    /// <summary>Makes the rest of the current transaction commit without waiting for its WAL flush.</summary>
    private const string AsynchronousCommitSql = "SELECT set_config('synchronous_commit', 'off', true)";

    /// <summary>
    /// Makes prepared statements in the rest of the current transaction run their generic plan, with key lookups
    /// pinned (<see cref="KeyLookupPlans"/>). Measured on PostgreSQL 15 for the fenced and logged write: planning it
    /// costs about 1 ms for a few rows and 5-8 ms for 512; its generic plan runs 4 rows in 0.3 ms and 16 in 1.1 ms
    /// (custom plans: 0.4 and 1.2 ms, plus the planning), 512 updates as fast as a custom plan, but 512 first writes 3-5
    /// times slower (its guesses join the inserted rows back to the input with a nested loop), which is why larger
    /// batches with first writes are not prepared.
    /// </summary>
    internal const string BatchGenericPlanSql =
        $"SELECT set_config('plan_cache_mode', 'force_generic_plan', true), {KeyLookupPlans.Settings}";

    // The settings a batch statement runs under: its updates and lookups by key are the only plan left
    // (KeyLookupPlans), with, for a batch that appends records, an asynchronous commit, and for a small batch its
    // prepared statement's generic plan.
    internal const string BatchKeyLookupSql = $"SELECT {KeyLookupPlans.Settings}";

    internal const string BatchAsynchronousCommitSql =
        $"SELECT set_config('synchronous_commit', 'off', true), {KeyLookupPlans.Settings}";

    internal const string BatchAsynchronousCommitGenericPlanSql =
        $"SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true), {KeyLookupPlans.Settings}";

    /// <summary>The largest batch with first writes that runs the prepared statement's generic plan (see <see cref="BatchGenericPlanSql"/>);
    /// a batch of updates only runs it at any size.</summary>
    private const int GenericPlanMaxRows = 32;

    /// <summary>The channel <see cref="PostgresMetadataLog"/> listens on; payloads are <c>cluster_id:durable_offset</c>.</summary>
    internal const string LogChannel = "meta_log";
}
