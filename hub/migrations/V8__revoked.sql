-- The revocations in force, as the hub judged them from the CA's list and
-- the hubs' `revocation` entries (`hub/src/store/revoked.rs`): author ->
-- last valid seq. Entries of a revoked author past its last valid seq stay
-- in the log as evidence and count nowhere else (views, role grants, an
-- event's history); the timeline marks them. Rewritten whole whenever the
-- list or the revocation entries change, in the same transaction.
CREATE TABLE revoked_authors (
    author         bytea  PRIMARY KEY CHECK (length(author) = 32),
    last_valid_seq bigint NOT NULL CHECK (last_valid_seq >= 0)
);

-- Revocation entries are few; judging them must not scan the log.
CREATE INDEX entries_revocations ON entries (pos) WHERE kind = 5;
