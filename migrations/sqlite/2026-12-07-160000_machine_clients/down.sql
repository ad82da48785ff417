ALTER TABLE refresh_tokens DROP COLUMN jkt;
DROP TABLE trusted_issuers;
DROP TABLE used_jtis;
