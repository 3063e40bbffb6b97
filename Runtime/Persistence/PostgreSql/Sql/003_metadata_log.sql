-- The cluster's metadata log: every committed metadata change, appended in the same transaction as the state write
-- that made it, under a gap-free offset per cluster.
--
-- Offsets come from metadata_log_head, never from a sequence: a sequence hands out numbers in one order and the
-- transactions holding them commit in another, so a reader that remembers "last offset seen" would skip a record
-- committed late under a lower number. An appending transaction instead bumps its cluster's head row
-- (last_offset = last_offset + n) and keeps that row lock until it commits, so offsets are handed out in commit order
-- and every offset at or below a committed head is committed and visible. Only writes that carry records take that
-- lock; plain grain state writes never touch the head.
--
-- The column is log_offset rather than "offset", which is a reserved word and would need quoting everywhere.
-- payload is bytea for the reasons given in 001_grain_state.sql (bytes read back exactly as written).
CREATE TABLE metadata_log
(
    cluster_id text        NOT NULL,
    log_offset bigint      NOT NULL,
    type       text        NOT NULL,
    key        text        NOT NULL,
    payload    bytea       NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, log_offset)
);

CREATE TABLE metadata_log_head
(
    cluster_id  text   PRIMARY KEY,
    last_offset bigint NOT NULL
);
