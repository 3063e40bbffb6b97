-- Snapshots of the metadata image, so that a starting silo loads the newest one and replays only the log's tail, and
-- so that the log's prefix below the snapshots can be deleted (docs/metadata-log.md, "Snapshots and retention").
--
-- A snapshot is the image at snapshot_offset: every record up to that offset applied, none after. It is a pure
-- function of the log's prefix, so two writers that write one at the same offset write the same bytes; the primary
-- key makes the second write a no-op. data is split into chunks (a 1M-partition image is tens of MB) so that no single
-- value approaches PostgreSQL's 1 GB limit and the server never builds one huge datum; chunks and their header are
-- written in one transaction, and read in one statement, so a reader sees a snapshot whole or not at all.
--
-- format_version names the layout of the concatenated chunks (written by MetadataImageSnapshot in Grains); a silo
-- skips versions it cannot read and falls back to an older snapshot. sha256 is over the concatenated chunks: a
-- snapshot whose bytes do not match it is ignored.
CREATE TABLE metadata_snapshot
(
    cluster_id      text        NOT NULL,
    snapshot_offset bigint      NOT NULL,
    format_version  integer     NOT NULL,
    chunk_count     integer     NOT NULL,
    length          bigint      NOT NULL,
    sha256          bytea       NOT NULL,
    written_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, snapshot_offset)
);

CREATE TABLE metadata_snapshot_chunk
(
    cluster_id      text    NOT NULL,
    snapshot_offset bigint  NOT NULL,
    chunk_index     integer NOT NULL,
    data            bytea   NOT NULL,
    PRIMARY KEY (cluster_id, snapshot_offset, chunk_index),
    FOREIGN KEY (cluster_id, snapshot_offset) REFERENCES metadata_snapshot (cluster_id, snapshot_offset) ON DELETE CASCADE
);

-- The data is compressed already: storing it out of line without pglz saves the server compressing it again.
ALTER TABLE metadata_snapshot_chunk ALTER COLUMN data SET STORAGE EXTERNAL;
