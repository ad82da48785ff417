-- Single-use JWT ids in the order they expire: the table is its primary key
-- (expires_at, key), so that the uses recorded together land on the same few
-- pages and housekeeping deletes from one end, instead of every use touching a
-- random page of an index on a text key. `key` is the SHA-256 of the kind, the
-- issuer and the jti (32 bytes). A JWT's expiry is part of what it says, so a
-- replay of it has the same (expires_at, key): the row's existence is the
-- replay.
CREATE TABLE used_jtis_in_order (
    expires_at BIGINT NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (expires_at, key)
) WITHOUT ROWID;
INSERT OR IGNORE INTO used_jtis_in_order (expires_at, key)
    SELECT expires_at, unhex(key) FROM used_jtis WHERE unhex(key) IS NOT NULL;
DROP TABLE used_jtis;
ALTER TABLE used_jtis_in_order RENAME TO used_jtis;
