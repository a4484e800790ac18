-- Failed sign-ins per account, kept here rather than in each app node's
-- memory so that adding nodes does not multiply the guesses an attacker
-- gets. The key is the username lower-cased in Go (as the in-memory
-- counts are; SQL's LOWER differs between the engines), whether or not
-- such a user exists. Times are Unix microseconds; wait_until is 0 while
-- free failures remain. last_at is indexed for the cleanup of idle rows.
CREATE TABLE login_failures (
    username   TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_at    BIGINT NOT NULL,
    wait_until BIGINT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures(last_at);
