-- The transaction that wrote each revocation event. Sequence values are taken
-- at insert time but become visible at commit, so `seq` alone cannot tell a
-- reader which events it may still be missing; the writer's transaction id,
-- compared with the reader's snapshot xmin, can (src/credentials/revocation.rs).
-- The top-level id, also from inside a savepoint.
ALTER TABLE revocation_events
    ADD COLUMN txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX revocation_events_txid ON revocation_events(txid);
