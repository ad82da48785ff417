CREATE TABLE used_jtis_by_key (
    key TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO used_jtis_by_key (key, expires_at)
    SELECT encode(key, 'hex'), MAX(expires_at) FROM used_jtis GROUP BY key;
DROP TABLE used_jtis;
ALTER TABLE used_jtis_by_key RENAME TO used_jtis;
ALTER INDEX used_jtis_by_key_pkey RENAME TO used_jtis_pkey;
CREATE INDEX used_jtis_expires ON used_jtis(expires_at);
