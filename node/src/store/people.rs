//! Accounts and bearer tokens of the node's HTTP API (migration 5; failed
//! logins and lockouts, migration 7; the device's own officers, migration
//! 10), and each person's role from the `role_grant` entries in the log.
//!
//! Accounts and tokens are this device's secrets: passwords are kept as
//! argon2id hashes, tokens as SHA-256 digests; neither is signed, synced
//! or rebuilt with the views. Roles are not kept here: they are entries a
//! hub signed (`docs/security.md` 3.2), read from the log on every request.
//! The one local mark is `device_officer`, set only by the CLI: what it
//! means (officer on this device until a hub's grant names the person) is
//! decided in `crate::roles`, not here.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, OptionalExtension, Transaction};
use sentinel_schema::access::{effective_roles, Grant};
use sentinel_schema::{AuthorId, Body, BodyKind, PersonRole, SignedEntry};

use super::{blob, Store, StoreError};

/// Creates the accounts and tokens tables (migration 5).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- People who sign in to this node's HTTP API (secrets, never synced).
        CREATE TABLE accounts (
            name          TEXT    PRIMARY KEY,
            password_hash TEXT    NOT NULL,
            disabled      INTEGER NOT NULL DEFAULT 0,
            created_ms    INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        -- Bearer tokens, by the SHA-256 of the token.
        CREATE TABLE tokens (
            hash       BLOB    PRIMARY KEY,
            account    TEXT    NOT NULL REFERENCES accounts (name),
            issued_ms  INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            revoked    INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX tokens_by_account ON tokens (account);",
    )?;
    Ok(())
}

/// Counts failed logins and locks accounts (migration 7): kept in the
/// store, so a restart does not reset a lockout.
pub(crate) fn migrate_logins(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE accounts ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE accounts ADD COLUMN locked_until_ms INTEGER NOT NULL DEFAULT 0;",
    )?;
    Ok(())
}

/// Marks the device's own officers (migration 10): accounts the CLI
/// created with `user add NAME --device-officer` (`crate::roles`).
pub(crate) fn migrate_device_officer(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE accounts ADD COLUMN device_officer INTEGER NOT NULL DEFAULT 0;")?;
    Ok(())
}

/// The roles hubs granted: each person's effective role, and every person
/// some counted grant names (a grant of `none` included, which the roles
/// leave out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubRoles {
    pub roles: BTreeMap<String, PersonRole>,
    pub named: BTreeSet<String>,
}

/// What a login needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// An argon2id PHC string.
    pub hash: String,
    pub disabled: bool,
    /// Failed logins since the last success.
    pub failures: u32,
    /// Logins are refused until then (Unix ms; 0: not locked).
    pub locked_until_ms: u64,
}

/// One account, as `user` commands list them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub name: String,
    pub disabled: bool,
    pub created_ms: u64,
    /// Created with `--device-officer` (`crate::roles`).
    pub device_officer: bool,
}

/// A time as SQLite stores it (refusing values past `i64::MAX`).
fn int(ms: u64) -> Result<i64, StoreError> {
    i64::try_from(ms).map_err(|_| StoreError::CorruptColumn { column: "time" })
}

impl Store {
    /// Creates an account; `false` when the name is taken.
    pub fn create_account(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.create_account_as(name, password_hash, now_ms, false)
    }

    /// Creates an account, one of the device's own officers when
    /// `device_officer` (only the CLI asks for that); `false` when the
    /// name is taken.
    pub fn create_account_as(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
        device_officer: bool,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO accounts (name, password_hash, created_ms, device_officer)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, password_hash, int(now_ms)?, device_officer],
        )?;
        Ok(n == 1)
    }

    /// The names of the device's own officers, disabled accounts included
    /// (they cannot sign in anyway).
    pub fn device_officers(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT name FROM accounts WHERE device_officer = 1")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The password hash and whether the account is disabled.
    pub fn account_secret(&self, name: &str) -> Result<Option<(String, bool)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT password_hash, disabled FROM accounts WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Every account, by name.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT name, disabled, created_ms, device_officer FROM accounts ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Account {
                name: r.get(0)?,
                disabled: r.get(1)?,
                created_ms: r.get::<_, i64>(2)?.max(0) as u64,
                device_officer: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Disables an account and revokes its tokens in one transaction;
    /// `false` when there is no such account.
    pub fn disable_account(&mut self, name: &str) -> Result<bool, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let n = tx.execute("UPDATE accounts SET disabled = 1 WHERE name = ?1", [name])?;
        tx.execute("UPDATE tokens SET revoked = 1 WHERE account = ?1", [name])?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Keeps a new token's digest.
    pub fn insert_token(
        &self,
        hash: &[u8; 32],
        account: &str,
        issued_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO tokens (hash, account, issued_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash.as_slice(), account, int(issued_ms)?, int(expires_ms)?],
        )?;
        Ok(())
    }

    /// The account a token belongs to, if the token is known, not revoked,
    /// not expired at `now_ms`, and its account is not disabled.
    pub fn token_account(
        &self,
        hash: &[u8; 32],
        now_ms: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT t.account FROM tokens t JOIN accounts a ON a.name = t.account
                 WHERE t.hash = ?1 AND t.revoked = 0 AND t.expires_ms > ?2 AND a.disabled = 0",
                params![hash.as_slice(), int(now_ms)?],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Revokes one token (logout).
    pub fn revoke_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
            [hash.as_slice()],
        )?;
        Ok(())
    }

    /// What a login needs of the account `name`, if it exists.
    pub fn login_record(&self, name: &str) -> Result<Option<LoginRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT password_hash, disabled, failed_logins, locked_until_ms
                 FROM accounts WHERE name = ?1",
                [name],
                |r| {
                    Ok(LoginRecord {
                        hash: r.get(0)?,
                        disabled: r.get(1)?,
                        failures: r.get::<_, i64>(2)?.clamp(0, i64::from(u32::MAX)) as u32,
                        locked_until_ms: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )
            .optional()?)
    }

    /// Counts a failed login of `name` at `now_ms` and locks the account
    /// for `lockout(failures)` ms from now (0: not locked); the failures
    /// so far. Nothing happens for a name no account has.
    pub fn login_failed(
        &mut self,
        name: &str,
        now_ms: u64,
        lockout: fn(u32) -> u64,
    ) -> Result<u32, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let failures: Option<i64> = tx
            .query_row(
                "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE name = ?1
                 RETURNING failed_logins",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(failures) = failures else {
            return Ok(0);
        };
        let failures = failures.clamp(0, i64::from(u32::MAX)) as u32;
        let locked = match lockout(failures) {
            0 => 0,
            ms => now_ms.saturating_add(ms),
        };
        tx.execute(
            "UPDATE accounts SET locked_until_ms = ?2 WHERE name = ?1",
            params![name, int(locked)?],
        )?;
        tx.commit()?;
        Ok(failures)
    }

    /// A login of `name` succeeded: its failures are forgotten.
    pub fn login_succeeded(&self, name: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE accounts SET failed_logins = 0, locked_until_ms = 0 WHERE name = ?1",
            [name],
        )?;
        Ok(())
    }

    /// Sets `name`'s password hash, forgets its failed logins and lockout,
    /// and revokes its tokens but `keep` (the token of a person changing
    /// their own password) in one transaction; `false` when there is no
    /// such account.
    pub fn set_password(
        &mut self,
        name: &str,
        password_hash: &str,
        keep: Option<&[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let n = tx.execute(
            "UPDATE accounts SET password_hash = ?2, failed_logins = 0, locked_until_ms = 0
             WHERE name = ?1",
            params![name, password_hash],
        )?;
        let keep: &[u8] = keep.map_or(&[], |k| k.as_slice());
        tx.execute(
            "UPDATE tokens SET revoked = 1 WHERE account = ?1 AND hash <> ?2",
            params![name, keep],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Enables a disabled account again, its failed logins and lockout
    /// forgotten (its old tokens stay revoked); `false` when there is no
    /// such account.
    pub fn enable_account(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE accounts SET disabled = 0, failed_logins = 0, locked_until_ms = 0
             WHERE name = ?1",
            [name],
        )?;
        Ok(n == 1)
    }

    /// Deletes every token expired at `now_ms` or revoked (either is
    /// refused anyway); how many went.
    pub fn purge_tokens(&self, now_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM tokens WHERE revoked = 1 OR expires_ms <= ?1",
            [int(now_ms)?],
        )?)
    }

    /// Every `role_grant` entry in the log, in log order. (Kind 4 is
    /// written out, not bound, so the partial index of migration 8 serves
    /// it: roles are read on every request.)
    pub fn role_grants(&self) -> Result<Vec<SignedEntry>, StoreError> {
        const _: () = assert!(BodyKind::RoleGrant as u8 == 4);
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT pos, bytes FROM entries WHERE kind = 4 ORDER BY pos")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let pos: i64 = r.get(0)?;
            out.push(
                SignedEntry::from_bytes(r.get(1)?)
                    .map_err(|source| StoreError::CorruptEntry { pos, source })?,
            );
        }
        Ok(out)
    }

    /// The authors of the `role_grant` entries in the log.
    pub fn role_grant_authors(&self) -> Result<Vec<AuthorId>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT DISTINCT author FROM entries WHERE kind = 4")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(AuthorId(blob(r, 0, "entries.author")?));
        }
        Ok(out)
    }

    /// Every person's role, from the grants of the authors `trusted`
    /// accepts (hubs): the newest grant wins ([`effective_roles`]). A
    /// grant its author made past a revocation's last valid seq grants
    /// nothing, whenever the revocation arrived ([`super::revoked`]).
    pub fn roles(
        &self,
        trusted: impl Fn(&AuthorId) -> bool,
    ) -> Result<BTreeMap<String, PersonRole>, StoreError> {
        Ok(self.hub_roles(trusted)?.roles)
    }

    /// [`Store::roles`], with every person a counted grant names.
    pub fn hub_roles(&self, trusted: impl Fn(&AuthorId) -> bool) -> Result<HubRoles, StoreError> {
        let entries = self.role_grants()?;
        let revoked = super::verdict::revoked_authors(self.conn())?;
        let grants: Vec<Grant<'_>> = entries
            .iter()
            .filter_map(|e| match &e.entry().body {
                Body::RoleGrant(grant)
                    if trusted(&e.author()) && super::verdict::counts(&revoked, e) =>
                {
                    Some(Grant {
                        hlc: e.entry().hlc,
                        author: e.author(),
                        id: e.id(),
                        grant,
                    })
                }
                _ => None,
            })
            .collect();
        let named = grants.iter().map(|g| g.grant.person.clone()).collect();
        Ok(HubRoles {
            roles: effective_roles(grants),
            named,
        })
    }
}
