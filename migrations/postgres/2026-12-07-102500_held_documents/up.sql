-- A consent request held for a client ID metadata document names a client
-- that has no row yet: the row is written only when a person approves. The
-- validated document travels with the held request until then. The foreign
-- key (client_id, the table's only one) is dropped by whatever name it has.
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'consent_requests'::regclass AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE consent_requests DROP CONSTRAINT %I', fk.conname);
    END LOOP;
END
$$;
ALTER TABLE consent_requests ADD COLUMN client_document TEXT;
