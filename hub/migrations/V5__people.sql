-- People who sign in to the hub's HTTP API. Secrets stay on this hub:
-- nothing here is signed or synced. Roles are not here: they come from
-- `role_grant` entries in the log (signed, replicated), found through the
-- index below.
CREATE TABLE accounts (
    name          text    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
    -- argon2id, in the PHC string format.
    password_hash text    NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_ms    bigint  NOT NULL
);

-- Bearer tokens: only their SHA-256 is kept. A token is refused once it
-- expires, is revoked (logout), or its account is disabled or its role
-- changes (every token of the account is revoked then).
CREATE TABLE tokens (
    hash       bytea   PRIMARY KEY CHECK (length(hash) = 32),
    account    text    NOT NULL REFERENCES accounts (name),
    issued_ms  bigint  NOT NULL,
    expires_ms bigint  NOT NULL,
    revoked    boolean NOT NULL DEFAULT false
);
CREATE INDEX tokens_by_account ON tokens (account) WHERE NOT revoked;

-- Role grants are few; finding them must not scan the log.
CREATE INDEX entries_role_grants ON entries (pos) WHERE kind = 4;
