//! Heads: what a store holds, as `author → (seq, id)` of each author's
//! newest entry. Equal heads mean identical logs, because chains are
//! hash-linked.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::ids::{AuthorId, EntryId};

/// One author's newest entry in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    pub seq: u64,
    pub id: EntryId,
}

/// Domain separation for [`Heads::digest`].
const HEADS_DIGEST_CONTEXT: &[u8] = b"sentinel/heads/v1";

/// The heads of a store, ordered by author.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heads(BTreeMap<AuthorId, Head>);

impl Heads {
    pub fn new() -> Self {
        Heads::default()
    }

    pub fn get(&self, author: &AuthorId) -> Option<Head> {
        self.0.get(author).copied()
    }

    /// Records `head` as `author`'s newest entry.
    pub fn set(&mut self, author: AuthorId, head: Head) {
        self.0.insert(author, head);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AuthorId, &Head)> {
        self.0.iter()
    }

    pub fn n_authors(&self) -> usize {
        self.0.len()
    }

    /// Entries held in all: each chain is gap-free from seq 1.
    pub fn n_entries(&self) -> u64 {
        self.0.values().map(|h| h.seq).sum()
    }

    /// SHA-256 over `"sentinel/heads/v1"` followed by, for each author in
    /// ascending byte order, `author (32) ‖ seq (u64 big-endian) ‖ id (32)`.
    /// Two stores with equal digests hold the same log.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HEADS_DIGEST_CONTEXT);
        for (author, head) in &self.0 {
            h.update(author.as_bytes());
            h.update(head.seq.to_be_bytes());
            h.update(head.id.as_bytes());
        }
        h.finalize().into()
    }
}

impl FromIterator<(AuthorId, Head)> for Heads {
    fn from_iter<I: IntoIterator<Item = (AuthorId, Head)>>(iter: I) -> Self {
        Heads(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_every_head_not_on_insert_order() {
        let a = (
            AuthorId([1; 32]),
            Head {
                seq: 3,
                id: EntryId([7; 32]),
            },
        );
        let b = (
            AuthorId([2; 32]),
            Head {
                seq: 1,
                id: EntryId([8; 32]),
            },
        );
        let h1: Heads = [a, b].into_iter().collect();
        let h2: Heads = [b, a].into_iter().collect();
        assert_eq!(h1.digest(), h2.digest());
        assert_eq!(h1.n_entries(), 4);
        let mut h3 = h1.clone();
        h3.set(
            a.0,
            Head {
                seq: 3,
                id: EntryId([9; 32]),
            },
        );
        assert_ne!(h1.digest(), h3.digest());
        assert_ne!(Heads::new().digest(), h1.digest());
    }
}
