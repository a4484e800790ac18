-- Leases let one app node at a time run a background job (garbage
-- collection, expiry sweeps) without engine-specific advisory locks.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
