ALTER TABLE api_keys DROP COLUMN mailbox_id;
DROP TABLE mailbox_auth_keys;
DROP TABLE mailboxes;
