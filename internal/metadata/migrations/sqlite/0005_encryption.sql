-- Encryption at rest: the data key of each encrypted blob, wrapped by the
-- master key key_id (master keys themselves are never stored here). A blob
-- without a row was written before encryption and is read as plaintext.
-- Rows named "upload:<id>" hold the data key of an unfinished upload.
-- size is the plaintext size (-1 until known); parts lists the plaintext
-- part sizes of a blob assembled from upload parts, empty otherwise.
CREATE TABLE blob_keys (
    blob_id     TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    size        BIGINT NOT NULL DEFAULT -1,
    parts       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX blob_keys_key_id ON blob_keys(key_id);
