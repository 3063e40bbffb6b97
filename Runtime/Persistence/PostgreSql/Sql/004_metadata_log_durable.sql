-- The durable frontier of each cluster's metadata log: readers never read past it.
--
-- A batch that appends records takes the log's head row (003_metadata_log.sql) and commits with synchronous_commit
-- off, so it releases the head row as soon as its commit record is written, not after the disk flush (nor, with a
-- synchronous standby, after the standby's answer). Appends from every silo therefore no longer queue behind each
-- other's flushes. Before any of its writes is acknowledged, the appending silo runs a second, ordinary (synchronous)
-- transaction that records the log head it read here, under its own row. That transaction's commit is flushed, and
-- replicated when a synchronous standby is configured, only after every commit before it in the WAL: the appends that
-- moved the head to that value included. So every offset at or below any value in this table is committed and
-- durable, and readers (image tailers, watches) read up to max(durable_offset), never further. A record is committed
-- and visible to other transactions a moment before it is durable; readers of the log never see it in that moment,
-- and anything another transaction wrote after seeing it lies later in the WAL and is durable only after it.
--
-- One row per writer (a storage instance, i.e. one silo process), so that the silos' durability transactions never
-- wait on each other's row locks; rows of writers gone for a while are deleted once a newer row covers them.
CREATE TABLE metadata_log_durable
(
    cluster_id     text        NOT NULL,
    writer         text        NOT NULL,
    durable_offset bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, writer)
);

-- Logs written before this migration were appended with synchronous commits: their whole head is durable.
INSERT INTO metadata_log_durable (cluster_id, writer, durable_offset)
SELECT cluster_id, 'before-004', last_offset FROM metadata_log_head;
