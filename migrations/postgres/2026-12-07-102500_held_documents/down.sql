ALTER TABLE consent_requests DROP COLUMN client_document;
DELETE FROM consent_requests WHERE client_id NOT IN (SELECT id FROM clients);
ALTER TABLE consent_requests ADD CONSTRAINT consent_requests_client_id_fkey
    FOREIGN KEY (client_id) REFERENCES clients(id);
