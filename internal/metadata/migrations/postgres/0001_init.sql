-- Users, spaces, the file tree, versions, blobs, the change journal,
-- Names compare bytewise (COLLATE "C") so listings sort exactly as on SQLite.
-- WebDAV dead properties and browser sessions.
-- Times are Unix microseconds (BIGINT) so both engines store them alike.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    provider      TEXT NOT NULL DEFAULT 'local',
    password_hash TEXT NOT NULL DEFAULT '',
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    quota_bytes   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE spaces (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    owner_id    TEXT REFERENCES users(id),
    root_id     TEXT NOT NULL,
    quota_bytes BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX spaces_personal ON spaces(owner_id) WHERE kind = 'personal';

CREATE TABLE blobs (
    id         TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    space_id      TEXT NOT NULL REFERENCES spaces(id),
    parent_id     TEXT REFERENCES nodes(id),
    name          TEXT COLLATE "C" NOT NULL,
    name_fold     TEXT COLLATE "C" NOT NULL,
    kind          SMALLINT NOT NULL,
    size          BIGINT NOT NULL DEFAULT 0,
    mtime         BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    version_id    TEXT,
    content_type  TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL DEFAULT '',
    modified_by   TEXT NOT NULL DEFAULT '',
    trashed_at    BIGINT,
    trashed_by    TEXT,
    trash_root_id TEXT
);
-- Live siblings have unique names; trashed nodes keep their name and parent
-- so they can be restored, and must not block new files of the same name.
CREATE UNIQUE INDEX nodes_live_name ON nodes(parent_id, name) WHERE trash_root_id IS NULL;
-- Folder listings: folders first, then by name (keyset pagination).
CREATE INDEX nodes_children ON nodes(parent_id, kind, name) WHERE trash_root_id IS NULL;
CREATE INDEX nodes_children_mtime ON nodes(parent_id, kind, mtime, name) WHERE trash_root_id IS NULL;
CREATE INDEX nodes_children_size ON nodes(parent_id, kind, size, name) WHERE trash_root_id IS NULL;
CREATE INDEX nodes_fold ON nodes(parent_id, name_fold) WHERE trash_root_id IS NULL;
CREATE INDEX nodes_space ON nodes(space_id, name_fold);
CREATE INDEX nodes_trash ON nodes(space_id, trashed_at) WHERE trashed_at IS NOT NULL;
CREATE INDEX nodes_trash_root ON nodes(trash_root_id) WHERE trash_root_id IS NOT NULL;
CREATE INDEX nodes_parent_all ON nodes(parent_id);

CREATE TABLE versions (
    id         TEXT PRIMARY KEY,
    node_id    TEXT NOT NULL REFERENCES nodes(id),
    blob_id    TEXT NOT NULL REFERENCES blobs(id),
    size       BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    mtime      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX versions_node ON versions(node_id, created_at);
CREATE INDEX versions_blob ON versions(blob_id);

CREATE TABLE changes (
    seq        BIGSERIAL PRIMARY KEY,
    space_id   TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    op         TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX changes_space ON changes(space_id, seq);

CREATE TABLE dead_props (
    node_id TEXT NOT NULL REFERENCES nodes(id),
    ns      TEXT NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (node_id, ns, name)
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    remote_addr  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);
