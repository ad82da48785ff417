ALTER TABLE mailbox_auth_keys DROP COLUMN expires_at;
ALTER TABLE mailbox_auth_keys DROP COLUMN allowed_ips;
DROP TABLE sending_domains;
