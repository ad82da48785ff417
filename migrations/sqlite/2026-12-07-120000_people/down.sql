DROP TABLE identities;
ALTER TABLE users DROP COLUMN disabled_at;
DROP INDEX users_external_id;
ALTER TABLE users DROP COLUMN external_id;
DROP INDEX workspaces_external_id;
ALTER TABLE workspaces DROP COLUMN external_id;
