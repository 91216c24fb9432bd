//! The node's store as the sync protocol sees it.
//!
//! `apply` commits to the log only (durable before it returns, so the
//! protocol may acknowledge); the views follow through the projector, which
//! the node runs after each batch or when the session goes quiet.

use rusqlite::{params, OptionalExtension};
use sentinel_schema::{AuthorId, Head, Heads, SignedEntry, VerifiedEntry};
use sentinel_sync::{ApplyReport, Rejection, SyncStore};

use super::revoked::REVOCATION_LIST;
use super::{log, Store, StoreError};

impl SyncStore for Store {
    type Error = StoreError;

    fn heads(&self) -> Result<Heads, StoreError> {
        log::heads(self.conn())
    }

    fn head(&self, author: &AuthorId) -> Result<Option<Head>, StoreError> {
        log::head(self.conn(), author)
    }

    fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT pos, bytes FROM entries WHERE author = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![author.as_bytes(), after as i64, max_entries as i64])?;
        let mut out = Vec::new();
        let mut bytes_total = 0usize;
        while let Some(r) = rows.next()? {
            let pos: i64 = r.get(0)?;
            let bytes: Vec<u8> = r.get(1)?;
            if !out.is_empty() && bytes_total + bytes.len() > max_bytes {
                break;
            }
            bytes_total += bytes.len();
            out.push(
                SignedEntry::from_bytes(bytes)
                    .map_err(|source| StoreError::CorruptEntry { pos, source })?,
            );
        }
        Ok(out)
    }

    fn apply(
        &mut self,
        entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, StoreError> {
        self.apply_remote(entries, now_ms)
    }

    fn quarantine(&mut self, rejected: Vec<Rejection>, now_ms: u64) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        for r in &rejected {
            log::quarantine(&tx, &r.entry, r.reason.code(), &r.detail, now_ms)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT der FROM certificates WHERE author = ?1")?
            .query_row([author.as_bytes()], |r| r.get(0))
            .optional()?)
    }

    fn add_certificates(
        &mut self,
        certificates: Vec<(AuthorId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        for (author, der) in &certificates {
            tx.prepare_cached(
                "INSERT INTO certificates (author, der, received_ms) VALUES (?1, ?2, 0)
                 ON CONFLICT (author) DO UPDATE SET der = excluded.der",
            )?
            .execute(params![author.as_bytes(), der])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn revocation_list(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(REVOCATION_LIST)
    }

    /// Stores a newer list and, in the same transaction, applies what it
    /// revokes to what the log already holds ([`super::revoked`]).
    fn set_revocation_list(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        let judge = self.judge.take();
        let done = (|| {
            let tx = self.conn_mut().transaction()?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![REVOCATION_LIST, bytes],
            )?;
            let enforced = match &judge {
                Some(judge) => super::revoked::enforce(&tx, judge)?,
                None => Default::default(),
            };
            tx.commit()?;
            Ok::<_, StoreError>(enforced)
        })();
        self.judge = judge;
        self.note_enforced(done?);
        Ok(())
    }
}
