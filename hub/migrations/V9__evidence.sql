-- A disk quota for evidence (`hub/src/store/evidence.rs`): quarantine and
-- forks keep entries' bytes while the total stays under the hub's quota;
-- beyond it, each further entry is counted here, per author and reason
-- (`fork` for forks), with the last one's seq, id and reason, and no bytes.
CREATE TABLE evidence_summary (
    author      bytea  NOT NULL CHECK (length(author) = 32),
    reason_code text   NOT NULL,
    count       bigint NOT NULL,
    seq         bigint NOT NULL,
    id          bytea  NOT NULL CHECK (length(id) = 32),
    reason      text   NOT NULL,
    first_ms    bigint NOT NULL,
    last_ms     bigint NOT NULL,
    PRIMARY KEY (author, reason_code)
);

-- The bytes of entries quarantine and forks keep, and how many summary
-- rows exist. One row, locked by every transaction that adds or releases
-- evidence.
CREATE TABLE evidence_usage (
    id        integer PRIMARY KEY CHECK (id = 1),
    bytes     bigint  NOT NULL,
    summaries bigint  NOT NULL
);
INSERT INTO evidence_usage (id, bytes, summaries) VALUES (1,
    (SELECT coalesce(sum(length(bytes)), 0) FROM quarantine)
        + (SELECT coalesce(sum(length(bytes)), 0) FROM forks),
    0);
