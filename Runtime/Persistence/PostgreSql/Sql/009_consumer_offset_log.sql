-- Committed offsets as a compacted log, the shape of Kafka's __consumer_offsets topic, in place of one row per
-- (group, topic, partition) updated in place (005). A commit call of a group appends one row holding every partition
-- it commits, so a commit of 100 partitions costs PostgreSQL one inserted row and one index entry instead of 100
-- updated rows. A partition's committed offset is its entry with the highest sequence number among the group's rows.
-- PostgresOffsetStore compacts a group in the transaction of one of its commits once its rows hold several times more
-- entries than it has partitions: the group's rows are replaced by one row with the newest entry of each partition
-- (docs/offsets.md).
--
-- seq comes from a sequence without a cache, so numbers are handed out in the order nextval is called across every
-- session; one group's calls never overlap (its grain waits for each), so a group's later commit always has the higher
-- number. A compacted row keeps each entry's own number and commit time in entry_seqs and entry_committed_at (NULL
-- in a row written by a commit: every entry is the row's own seq and committed_at), so a row another owner appended
-- while a compaction ran (two owners of a group for a moment) still orders correctly against it.
--
-- The arrays are parallel (entry i is topic_ids[i], topics[i], partitions[i], ...). They are stored uncompressed and
-- inline up to nearly a page (STORAGE EXTERNAL, toast_tuple_target 8160): compressing each commit's row cost more
-- CPU than its size saved, and the rows are short-lived. group_id is in "C" collation so that the primary key's order
-- is ordinal, the order silos page through the groups in, whatever the database's default collation.
CREATE SEQUENCE consumer_offset_seq;

CREATE TABLE consumer_offset_log
(
    cluster_id         text COLLATE "C" NOT NULL,
    group_id           text COLLATE "C" NOT NULL,
    seq                bigint           NOT NULL DEFAULT nextval('consumer_offset_seq'),
    committed_at       timestamptz      NOT NULL DEFAULT now(),
    topic_ids          uuid[]           NOT NULL,
    topics             text[]           NOT NULL,
    partitions         int[]            NOT NULL,
    offsets            bigint[]         NOT NULL,
    leader_epochs      int[]            NOT NULL,
    metadata           text[]           NULL,
    entry_seqs         bigint[]         NULL,
    entry_committed_at timestamptz[]    NULL,
    PRIMARY KEY (cluster_id, group_id, seq)
) WITH (toast_tuple_target = 8160);

ALTER TABLE consumer_offset_log
    ALTER COLUMN topic_ids SET STORAGE EXTERNAL,
    ALTER COLUMN topics SET STORAGE EXTERNAL,
    ALTER COLUMN partitions SET STORAGE EXTERNAL,
    ALTER COLUMN offsets SET STORAGE EXTERNAL,
    ALTER COLUMN leader_epochs SET STORAGE EXTERNAL,
    ALTER COLUMN metadata SET STORAGE EXTERNAL,
    ALTER COLUMN entry_seqs SET STORAGE EXTERNAL,
    ALTER COLUMN entry_committed_at SET STORAGE EXTERNAL;

-- Every group's offsets so far become one compacted row, each entry keeping its commit time; their numbers (0) are
-- below any commit's.
INSERT INTO consumer_offset_log
    (cluster_id, group_id, committed_at, topic_ids, topics, partitions, offsets, leader_epochs, metadata, entry_seqs, entry_committed_at)
SELECT o.cluster_id, o.group_id, max(o.committed_at),
       array_agg(o.topic_id ORDER BY o.topic_id, o.partition),
       array_agg(o.topic ORDER BY o.topic_id, o.partition),
       array_agg(o.partition ORDER BY o.topic_id, o.partition),
       array_agg(o.committed_offset ORDER BY o.topic_id, o.partition),
       array_agg(o.leader_epoch ORDER BY o.topic_id, o.partition),
       array_agg(o.metadata ORDER BY o.topic_id, o.partition),
       array_agg(0::bigint ORDER BY o.topic_id, o.partition),
       array_agg(o.committed_at ORDER BY o.topic_id, o.partition)
FROM consumer_offsets AS o
GROUP BY o.cluster_id, o.group_id;

-- The groups that have offsets are now the distinct group ids of the log, read through its primary key.
-- Not for a rolling upgrade: stop silos of earlier versions before a silo of this one migrates the schema.
DROP TABLE consumer_offsets;
DROP TABLE consumer_group_commits;
