-- A consent request held for a client ID metadata document names a client
-- that has no row yet: the row is written only when a person approves. The
-- validated document travels with the held request until then.
ALTER TABLE consent_requests DROP CONSTRAINT IF EXISTS consent_requests_client_id_fkey;
ALTER TABLE consent_requests ADD COLUMN client_document TEXT;
