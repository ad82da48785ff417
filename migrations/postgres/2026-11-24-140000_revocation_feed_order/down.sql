DROP INDEX revocation_events_txid;
ALTER TABLE revocation_events DROP COLUMN txid;
