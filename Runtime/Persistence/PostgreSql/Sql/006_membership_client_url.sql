-- The URL clients reach each silo's public API at (Meta:AdvertisedUrl), so that any silo can tell a client which silo
-- coordinates a consumer group (Kafka's FindCoordinator) and the client can send that group's calls there directly.
--
-- Nullable and without a default, so that adding it is a catalog change only (no table rewrite) and a silo of the
-- previous version keeps working during a rolling upgrade: its inserts name their columns and leave this one NULL,
-- its reads name their columns and never see it. A NULL URL means "this silo does not say where clients reach it":
-- clients then keep sending that silo's groups to any silo, which forwards.
ALTER TABLE membership ADD COLUMN client_url text;
