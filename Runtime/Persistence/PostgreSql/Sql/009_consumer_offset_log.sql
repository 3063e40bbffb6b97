-- Committed offsets as a compacted log, the shape of Kafka's __consumer_offsets topic, in place of one row per
-- (group, topic, partition) updated in place (005). A commit batch appends one row per group holding every partition
-- the group commits, so a commit of 100 partitions costs PostgreSQL one inserted row and one index entry instead of
-- 100 updated rows. A partition's committed offset is its entry with the highest sequence number among the group's rows.
-- PostgresOffsetStore compacts a group in the transaction of one of its commits once its rows hold several times more
-- entries than it has partitions: the group's rows are replaced by one row with the newest entry of each partition
-- (docs/offsets.md).
--
-- seq comes from a sequence without a cache, so numbers are handed out in the order nextval is called across every
-- session; one group's calls never overlap (its grain waits for each), so a group's later commit always has the higher
-- number. A row written by a commit gives every entry its own seq and committed_at; a rewritten row keeps each entry's
-- own number and commit time inside its entries, so a row another owner appended while a rewrite ran (two owners of a
-- group for a moment) still orders correctly against it.
--
-- entries is the row's partitions in the layout of OffsetLogEncoding (PostgresOffsetStore): a version byte, a flags
-- byte, the topics the row names (id and name, once each), then per partition its topic's index, partition, offset,
-- leader epoch and metadata, and in a rewritten row its number and commit time; integers big-endian. It is stored
-- uncompressed and inline up to nearly a page (STORAGE EXTERNAL, toast_tuple_target 8160): the rows are short-lived,
-- and compressing each commit's row cost more CPU than it saved. group_id is in "C" collation so that the primary key's
-- order is ordinal, the order silos page through the groups in, whatever the database's default collation.
CREATE SEQUENCE consumer_offset_seq;

CREATE TABLE consumer_offset_log
(
    cluster_id   text COLLATE "C" NOT NULL,
    group_id     text COLLATE "C" NOT NULL,
    seq          bigint           NOT NULL DEFAULT nextval('consumer_offset_seq'),
    committed_at timestamptz      NOT NULL DEFAULT now(),
    entries      bytea            NOT NULL,
    PRIMARY KEY (cluster_id, group_id, seq)
) WITH (toast_tuple_target = 8160);

ALTER TABLE consumer_offset_log ALTER COLUMN entries SET STORAGE EXTERNAL;

-- Every group's offsets so far become one rewritten row, each entry keeping its commit time; their numbers (0) are
-- below any commit's.
WITH topic AS (
    SELECT o.cluster_id, o.group_id, o.topic_id, max(o.topic) AS name,
           row_number() OVER (PARTITION BY o.cluster_id, o.group_id ORDER BY o.topic_id) - 1 AS ix
    FROM consumer_offsets AS o
    GROUP BY o.cluster_id, o.group_id, o.topic_id
),
topics AS (
    SELECT t.cluster_id, t.group_id, count(*) AS n,
           string_agg(uuid_send(t.topic_id) || int2send(octet_length(convert_to(t.name, 'UTF8'))::int2) || convert_to(t.name, 'UTF8'),
                      ''::bytea ORDER BY t.ix) AS bytes
    FROM topic AS t
    GROUP BY t.cluster_id, t.group_id
),
entries AS (
    SELECT o.cluster_id, o.group_id, count(*) AS n, max(o.committed_at) AS committed_at,
           string_agg(int2send(t.ix::int2) || int4send(o.partition) || int8send(o.committed_offset) || int4send(o.leader_epoch)
                      || CASE WHEN o.metadata IS NULL THEN int4send(-1)
                              ELSE int4send(octet_length(convert_to(o.metadata, 'UTF8'))) || convert_to(o.metadata, 'UTF8') END
                      || int8send(0) || int8send((extract(epoch FROM o.committed_at) * 1000000)::bigint),
                      ''::bytea ORDER BY o.topic_id, o.partition) AS bytes
    FROM consumer_offsets AS o
    JOIN topic AS t ON t.cluster_id = o.cluster_id AND t.group_id = o.group_id AND t.topic_id = o.topic_id
    GROUP BY o.cluster_id, o.group_id
)
INSERT INTO consumer_offset_log (cluster_id, group_id, committed_at, entries)
SELECT e.cluster_id, e.group_id, e.committed_at,
       '\x0101'::bytea || int2send(t.n::int2) || t.bytes || int4send(e.n::int4) || e.bytes
FROM entries AS e
JOIN topics AS t ON t.cluster_id = e.cluster_id AND t.group_id = e.group_id;

-- The groups that have offsets are now the distinct group ids of the log, read through its primary key.
-- Not for a rolling upgrade: stop silos of earlier versions before a silo of this one migrates the schema.
DROP TABLE consumer_offsets;
DROP TABLE consumer_group_commits;
