-- Identity and access: groups (local and from the directory), their links
-- to team spaces, app passwords, API tokens and the audit log.
-- (0003 is reserved for upload sessions.)

-- A group is named within its provider ("local", "ldap", ...), so a local
-- group and a directory group of the same name never merge.
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_name ON groups(provider, name);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id),
    user_id  TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

-- A group's role in a space: viewer, editor or manager.
CREATE TABLE group_links (
    space_id   TEXT NOT NULL REFERENCES spaces(id),
    group_id   TEXT NOT NULL REFERENCES groups(id),
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (space_id, group_id)
);
CREATE INDEX group_links_group ON group_links(group_id);

-- Only a SHA-256 of each secret is kept; the secrets are 32 random bytes,
-- so a fast hash is enough and a lookup is one indexed read.
CREATE TABLE app_passwords (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX app_passwords_user ON app_passwords(user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE audit (
    seq      BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL DEFAULT '',
    ip       TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    outcome  TEXT NOT NULL,
    details  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_actor ON audit(actor, seq);
CREATE INDEX audit_action ON audit(action, seq);
