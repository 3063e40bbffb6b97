-- Grain state: one versioned row per (cluster, grain, state name). Every write is a compare-and-set on version.
--
-- payload is bytea, not jsonb: jsonb normalises what it stores (reorders object keys, drops duplicate keys and
-- whitespace, rewrites numbers), so the bytes read back differ from the bytes written. System.Text.Json needs the
-- "$type" discriminator first by default, and jsonb sorts keys shorter-first, so polymorphic state would stop
-- deserialising. bytea also skips a UTF-8 decode and a JSON parse per write. To look at state by hand:
--   SELECT convert_from(payload, 'UTF8')::jsonb FROM grain_state WHERE ...;
-- A cleared state keeps its row with a NULL payload so that version keeps growing and a stale writer can never
-- resurrect it.
CREATE TABLE grain_state
(
    cluster_id text        NOT NULL,
    grain_type text        NOT NULL,
    grain_key  text        NOT NULL,
    state_name text        NOT NULL,
    version    bigint      NOT NULL,
    payload    bytea       NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, grain_type, grain_key, state_name)
);
