-- Cluster membership: one row per silo incarnation, and one version row per cluster.
--
-- Every status or suspicion change is one transaction that first compare-and-sets membership_version.version
-- (expected -> expected + 1), so each change is decided on the latest view and the version grows by exactly one per
-- change. Heartbeats only move heartbeat_at and never touch the version: they are not view changes, and bumping on
-- every heartbeat would make every silo re-read the table every two seconds for nothing.
--
-- Every timestamp is written by the database (now()), never by a silo, so liveness is always judged on one clock.
-- A Dead row is never updated again: a dead incarnation cannot come back, a restart is a new generation.
CREATE TABLE membership_version
(
    cluster_id text        PRIMARY KEY,
    version    bigint      NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE membership
(
    cluster_id        text        NOT NULL,
    endpoint          text        NOT NULL,
    generation        bigint      NOT NULL,
    name              text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('Joining', 'Active', 'ShuttingDown', 'Dead')),
    started_at        timestamptz NOT NULL,
    heartbeat_at      timestamptz NOT NULL,
    status_changed_at timestamptz NOT NULL,
    -- [{"endpoint": "http://...", "generation": 7, "at": "<timestamptz>"}], one entry per voter, expired ones pruned
    -- whenever a vote is written.
    suspicions        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (cluster_id, endpoint, generation)
);
