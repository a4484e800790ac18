-- Who disabled an account: 'directory' (the directory sync, because the
-- directory disabled, locked or dropped the user) or 'admin'. Only a
-- directory-disabled account is enabled again when the directory lists it
-- as active; an administrator's decision stands until an administrator
-- reverses it. Accounts disabled before this column existed count as
-- 'admin'.
ALTER TABLE users ADD COLUMN disabled_by TEXT NOT NULL DEFAULT '';
UPDATE users SET disabled_by = 'admin' WHERE disabled;
