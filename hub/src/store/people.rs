//! Accounts and bearer tokens of the HTTP API (migration V5; failed
//! logins and lockouts, V7), and each person's role from the `role_grant`
//! entries in the log.
//!
//! Secrets never leave this hub: passwords are kept as argon2id hashes and
//! tokens as SHA-256 digests. Roles are entries (signed, replicated); an
//! account without a granted role can sign in but may do nothing.

use std::collections::BTreeMap;

use sentinel_schema::access::{effective_roles, Grant};
use sentinel_schema::{Body, PersonRole, SignedEntry};

use super::{int, PgStore, StoreError};

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

/// One account, as admins list them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub name: String,
    pub disabled: bool,
    pub created_ms: u64,
}

impl PgStore {
    /// Creates an account; `false` when the name is taken.
    pub async fn create_account(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO accounts (name, password_hash, created_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &password_hash, &int(now_ms, "accounts.created_ms")?],
            )
            .await?;
        Ok(n == 1)
    }

    /// The password hash and whether the account is disabled.
    pub async fn account_secret(&self, name: &str) -> Result<Option<(String, bool)>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT password_hash, disabled FROM accounts WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, disabled, created_ms FROM accounts ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Account {
                name: r.get(0),
                disabled: r.get(1),
                created_ms: r.get::<_, i64>(2).max(0) as u64,
            })
            .collect())
    }

    /// Disables an account and revokes its tokens in one transaction;
    /// `false` when there is no such account.
    pub async fn disable_account(&self, name: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE accounts SET disabled = true WHERE name = $1",
                &[&name],
            )
            .await?;
        tx.execute(
            "UPDATE tokens SET revoked = true WHERE account = $1",
            &[&name],
        )
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Keeps a new token's digest.
    pub async fn insert_token(
        &self,
        hash: &[u8; 32],
        account: &str,
        issued_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO tokens (hash, account, issued_ms, expires_ms) VALUES ($1, $2, $3, $4)",
                &[
                    &hash.as_slice(),
                    &account,
                    &int(issued_ms, "tokens.issued_ms")?,
                    &int(expires_ms, "tokens.expires_ms")?,
                ],
            )
            .await?;
        Ok(())
    }

    /// The account a token belongs to, if the token is known, not revoked,
    /// not expired at `now_ms`, and its account is not disabled.
    pub async fn token_account(
        &self,
        hash: &[u8; 32],
        now_ms: u64,
    ) -> Result<Option<String>, StoreError> {
        // Every request asks this: prepared once per connection.
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT t.account FROM tokens t JOIN accounts a ON a.name = t.account
                 WHERE t.hash = $1 AND NOT t.revoked AND t.expires_ms > $2 AND NOT a.disabled",
            )
            .await?;
        let row = client
            .query_opt(&statement, &[&hash.as_slice(), &int(now_ms, "now")?])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Revokes one token (logout).
    pub async fn revoke_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE tokens SET revoked = true WHERE hash = $1",
                &[&hash.as_slice()],
            )
            .await?;
        Ok(())
    }

    /// What a login needs of the account `name`, if it exists.
    pub async fn login_record(&self, name: &str) -> Result<Option<LoginRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT password_hash, disabled, failed_logins, locked_until_ms
                 FROM accounts WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(row.map(|r| LoginRecord {
            hash: r.get(0),
            disabled: r.get(1),
            failures: r.get::<_, i32>(2).max(0) as u32,
            locked_until_ms: r.get::<_, i64>(3).max(0) as u64,
        }))
    }

    /// Counts a failed login of `name` at `now_ms` and locks the account
    /// for `lockout(failures)` ms from now (0: not locked); the failures
    /// so far. Nothing happens for a name no account has.
    pub async fn login_failed(
        &self,
        name: &str,
        now_ms: u64,
        lockout: fn(u32) -> u64,
    ) -> Result<u32, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE name = $1
                 RETURNING failed_logins",
                &[&name],
            )
            .await?;
        let Some(row) = row else {
            return Ok(0);
        };
        let failures = row.get::<_, i32>(0).max(0) as u32;
        let locked = match lockout(failures) {
            0 => 0,
            ms => now_ms.saturating_add(ms),
        };
        tx.execute(
            "UPDATE accounts SET locked_until_ms = $2 WHERE name = $1",
            &[&name, &int(locked, "accounts.locked_until_ms")?],
        )
        .await?;
        tx.commit().await?;
        Ok(failures)
    }

    /// A login of `name` succeeded: its failures are forgotten.
    pub async fn login_succeeded(&self, name: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE accounts SET failed_logins = 0, locked_until_ms = 0 WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(())
    }

    /// Sets `name`'s password hash, forgets its failed logins and lockout,
    /// and revokes its tokens but `keep` (the token of a person changing
    /// their own password) in one transaction; `false` when there is no
    /// such account.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        keep: Option<&[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE accounts SET password_hash = $2, failed_logins = 0, locked_until_ms = 0
                 WHERE name = $1",
                &[&name, &password_hash],
            )
            .await?;
        let keep: &[u8] = keep.map_or(&[], |k| k.as_slice());
        tx.execute(
            "UPDATE tokens SET revoked = true WHERE account = $1 AND hash <> $2",
            &[&name, &keep],
        )
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Enables a disabled account again, its failed logins and lockout
    /// forgotten (its old tokens stay revoked); `false` when there is no
    /// such account.
    pub async fn enable_account(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE accounts SET disabled = false, failed_logins = 0, locked_until_ms = 0
                 WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes every token expired at `now_ms` or revoked (either is
    /// refused anyway); how many went.
    pub async fn purge_tokens(&self, now_ms: u64) -> Result<u64, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM tokens WHERE revoked OR expires_ms <= $1",
                &[&int(now_ms, "now")?],
            )
            .await?)
    }

    /// Every person's role from the `role_grant` entries in the log (the
    /// session admitted them only from authors whose role may write them).
    /// A grant its author made past a revocation's last valid seq grants
    /// nothing, whenever the revocation arrived (`super::revoked`).
    pub async fn roles(&self) -> Result<BTreeMap<String, PersonRole>, StoreError> {
        // Every request asks this: prepared once per connection.
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT pos, bytes FROM entries e WHERE kind = 4
                     AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                         WHERE r.author = e.author AND e.seq > r.last_valid_seq)",
            )
            .await?;
        let rows = client.query(&statement, &[]).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let pos: i64 = r.get(0);
            let e = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                .map_err(|source| StoreError::CorruptEntry { pos, source })?;
            entries.push(e);
        }
        Ok(granted(&entries))
    }

    /// Who the token with digest `hash` signs in at `now_ms`, with their
    /// role now: `None` for a token unknown, expired or revoked, or of a
    /// disabled account. The API asks this on every request, so it is one
    /// prepared statement on one pooled connection — the token and the
    /// role grants that count (as [`PgStore::roles`] reads them) in one
    /// round trip and one snapshot — not a lookup per question.
    pub async fn signed_in(
        &self,
        hash: &[u8; 32],
        now_ms: u64,
    ) -> Result<Option<(String, PersonRole)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT t.account, g.pos, g.bytes
                 FROM tokens t JOIN accounts a ON a.name = t.account
                 LEFT JOIN LATERAL (
                     SELECT pos, bytes FROM entries e WHERE kind = 4
                         AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                             WHERE r.author = e.author AND e.seq > r.last_valid_seq)
                 ) g ON true
                 WHERE t.hash = $1 AND NOT t.revoked AND t.expires_ms > $2 AND NOT a.disabled",
            )
            .await?;
        let rows = client
            .query(&statement, &[&hash.as_slice(), &int(now_ms, "now")?])
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let name: String = first.get(0);
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(pos) = r.get::<_, Option<i64>>(1) else {
                continue;
            };
            let e = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(2))
                .map_err(|source| StoreError::CorruptEntry { pos, source })?;
            entries.push(e);
        }
        let role = granted(&entries)
            .get(&name)
            .copied()
            .unwrap_or(PersonRole::None);
        Ok(Some((name, role)))
    }

    /// One person's role ([`PersonRole::None`] without a grant).
    pub async fn role_of(&self, person: &str) -> Result<PersonRole, StoreError> {
        Ok(self
            .roles()
            .await?
            .get(person)
            .copied()
            .unwrap_or(PersonRole::None))
    }
}

/// Each person's role by the `role_grant` entries among `entries`.
fn granted(entries: &[SignedEntry]) -> BTreeMap<String, PersonRole> {
    effective_roles(entries.iter().filter_map(|e| match &e.entry().body {
        Body::RoleGrant(grant) => Some(Grant {
            hlc: e.entry().hlc,
            author: e.author(),
            id: e.id(),
            grant,
        }),
        _ => None,
    }))
}
