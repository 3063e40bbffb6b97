-- Committed offsets of consumer groups: one row per (cluster, group, topic id, partition), so a commit of one
-- partition rewrites one small row whatever the group's size. Written by PostgresOffsetStore, batched across groups.
--
-- topic_id, not the topic's name, is the key: a topic deleted and created again under its old name is another topic,
-- and must not inherit the old one's offsets. topic keeps the name at commit time for people reading the table.
-- committed_offset rather than "offset", which is a reserved word. committed_at is the database's clock (now(), the
-- committing transaction's start), never a silo's.
--
-- fillfactor leaves room on every page so that a commit, which changes no indexed column, is a HOT update: the new
-- row version goes on the same page and the primary key index is not touched. Commits rewrite the same rows over and
-- over, so this is most of their cost.
CREATE TABLE consumer_offsets
(
    cluster_id       text        NOT NULL,
    group_id         text        NOT NULL,
    topic_id         uuid        NOT NULL,
    partition        int         NOT NULL CHECK (partition >= 0),
    topic            text        NOT NULL,
    committed_offset bigint      NOT NULL CHECK (committed_offset >= 0),
    leader_epoch     int         NOT NULL,
    metadata         text        NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, group_id, topic_id, partition)
) WITH (fillfactor = 70);

-- One row per group that has offsets, with a lower bound of its newest commit: the expiry query ("groups whose
-- newest commit is older than X") scans this, one row per group, instead of grouping every offset row (10k groups
-- are 10k rows here, not 1M), and re-checks only its candidates against their offset rows. A group's row is inserted
-- by its first commit's batch, moved forward by a later batch only once it is a minute old (so a group that commits
-- all the time costs one update of it a minute), recomputed when offsets are deleted, and deleted with the group's
-- last offset.
--
-- last_commit_at is deliberately not indexed: an index on it would make every update of this row write new index
-- entries instead of a HOT update. The expiry query, run rarely, scans the table instead: a few milliseconds for
-- 10k groups.
CREATE TABLE consumer_group_commits
(
    cluster_id     text        NOT NULL,
    group_id       text        NOT NULL,
    last_commit_at timestamptz NOT NULL,
    PRIMARY KEY (cluster_id, group_id)
) WITH (fillfactor = 50);
