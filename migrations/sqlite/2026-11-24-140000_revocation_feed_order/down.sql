ALTER TABLE revocation_events DROP COLUMN txid;
