-- What a key is for, in the owner's words (edited on the key's page).
ALTER TABLE api_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';
