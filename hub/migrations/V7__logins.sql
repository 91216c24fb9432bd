-- Failed logins and lockouts of the HTTP API's accounts (secrets of this
-- hub, like the accounts): kept in the database, so a restart does not
-- reset a lockout. A successful login, a new password or re-enabling the
-- account clears them.
ALTER TABLE accounts
    ADD COLUMN failed_logins   integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until_ms bigint  NOT NULL DEFAULT 0;
