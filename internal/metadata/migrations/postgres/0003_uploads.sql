-- Resumable upload sessions: a file arrives in chunks, in any order and
-- with retries, across server restarts; finishing commits it like a
-- single upload. hash_state carries the SHA-256 of the chunks received in
-- order so far, so finishing rarely has to read bytes back.
CREATE TABLE upload_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    space_id    TEXT NOT NULL,
    parent_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    node_id     TEXT NOT NULL DEFAULT '',
    size        BIGINT NOT NULL,
    chunk_size  BIGINT NOT NULL,
    sha256      TEXT NOT NULL DEFAULT '',
    conflict    TEXT NOT NULL,
    if_match    TEXT NOT NULL DEFAULT '',
    mtime       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    hashed_upto BIGINT NOT NULL DEFAULT 0,
    hash_state  BYTEA
);
CREATE INDEX upload_sessions_user ON upload_sessions(user_id);
CREATE INDEX upload_sessions_expiry ON upload_sessions(expires_at);

CREATE TABLE upload_chunks (
    session_id TEXT NOT NULL REFERENCES upload_sessions(id),
    idx        INTEGER NOT NULL,
    size       BIGINT NOT NULL,
    PRIMARY KEY (session_id, idx)
);
