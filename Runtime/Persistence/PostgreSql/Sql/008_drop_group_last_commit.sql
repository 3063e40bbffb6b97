-- consumer_group_commits.last_commit_at (005) held a lower bound of each group's newest commit for a store-wide expiry
-- query. Offset expiry now runs in each group's grain on its own timer, from the offsets it holds, so nothing reads the
-- column any more and commits stopped moving it. The table stays: it is the list of groups that have offsets, which
-- silos page through to load the groups they own.
--
-- A silo of an earlier version names this column in its commits' inserts (NOT NULL, no default), so this migration
-- is not for a rolling upgrade: stop silos of earlier versions before a silo of this one migrates the schema.
ALTER TABLE consumer_group_commits DROP COLUMN last_commit_at;
