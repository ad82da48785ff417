DROP INDEX authorizations_resource;
ALTER TABLE consent_requests DROP COLUMN resource;
ALTER TABLE authorizations DROP COLUMN resource;
DROP TABLE resources;
