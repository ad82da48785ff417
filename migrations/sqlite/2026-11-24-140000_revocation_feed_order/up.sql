-- PostgreSQL records the writing transaction here (see its migration). SQLite
-- has one writer at a time, so `seq` order is commit order and this stays NULL.
ALTER TABLE revocation_events ADD COLUMN txid BIGINT;
