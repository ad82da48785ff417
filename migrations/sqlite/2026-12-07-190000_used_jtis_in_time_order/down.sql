CREATE TABLE used_jtis_by_key (
    key TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT OR IGNORE INTO used_jtis_by_key (key, expires_at)
    SELECT lower(hex(key)), MAX(expires_at) FROM used_jtis GROUP BY key;
DROP TABLE used_jtis;
ALTER TABLE used_jtis_by_key RENAME TO used_jtis;
CREATE INDEX used_jtis_expires ON used_jtis(expires_at);
