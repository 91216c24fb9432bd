//! What the session needs to know about authors: their certificates and
//! the revocation list, both vouched for by the deployment CA.
//!
//! The session does not parse X.509. It asks a [`TrustAnchor`], which the
//! node implements over `sentinel-certs`; tests use
//! [`crate::testing::TestAnchor`], whose "certificates" are small CBOR
//! blobs signed by a test CA key.

use std::collections::BTreeMap;

use sentinel_schema::{AuthorId, DeviceRole};

/// What a verified certificate says about its author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorInfo {
    /// The key the certificate is for (the entry-signing key).
    pub author: AuthorId,
    /// The role fixed in the certificate; decides which entry kinds the
    /// author may write ([`DeviceRole::may_write`]).
    pub role: DeviceRole,
    /// First Unix millisecond the certificate is valid (inclusive).
    pub not_before_ms: u64,
    /// Last Unix millisecond the certificate is valid (inclusive).
    pub not_after_ms: u64,
}

impl AuthorInfo {
    /// Whether the certificate covers `wall_ms` (an entry's HLC time).
    pub fn valid_at(&self, wall_ms: u64) -> bool {
        (self.not_before_ms..=self.not_after_ms).contains(&wall_ms)
    }
}

/// A verified revocation list: for each revoked author, the last seq of
/// theirs that stays valid (0: none does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revocations {
    /// Lists are numbered by the CA; a higher number replaces a lower one.
    /// 0 stands for "no list".
    pub number: u64,
    pub revoked: BTreeMap<AuthorId, u64>,
}

impl Revocations {
    /// The last valid seq of `author`, if the author is revoked.
    pub fn last_valid_seq(&self, author: &AuthorId) -> Option<u64> {
        self.revoked.get(author).copied()
    }

    /// Whether `author`'s entry at `seq` is still valid under this list.
    pub fn allows(&self, author: &AuthorId, seq: u64) -> bool {
        self.last_valid_seq(author).is_none_or(|last| seq <= last)
    }
}

/// The deployment CA, as far as the session needs it. Errors are the
/// reason in words: they end up in events and quarantine reasons.
pub trait TrustAnchor {
    /// Verifies a certificate (DER for the real CA) and says whom it is
    /// for. Time is not checked here: the session checks each entry's HLC
    /// time against the validity window instead.
    fn verify_certificate(&self, der: &[u8]) -> Result<AuthorInfo, String>;

    /// What a certificate from the local store says. It was verified
    /// before it was stored, so an implementation may only parse it; the
    /// default verifies it again. Sessions call this once per author they
    /// receive entries of, so with many authors the saving matters.
    fn stored_certificate(&self, der: &[u8]) -> Result<AuthorInfo, String> {
        self.verify_certificate(der)
    }

    /// Verifies a CA-signed revocation list.
    fn verify_revocation_list(&self, bytes: &[u8]) -> Result<Revocations, String>;

    /// The last valid seq of `author` by revocations besides the CA list:
    /// `revocation` entries signed by a hub that this side holds
    /// (`docs/security.md` 1.7). The session asks for every entry it
    /// checks, so one added while it runs applies to its next batch; the
    /// stricter of this and the list wins. Default: none.
    fn entry_revocation(&self, author: &AuthorId) -> Option<u64> {
        let _ = author;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_keeps_seqs_up_to_the_last_valid_one() {
        let a = AuthorId([1; 32]);
        let r = Revocations {
            number: 3,
            revoked: [(a, 2)].into_iter().collect(),
        };
        assert!(r.allows(&a, 2));
        assert!(!r.allows(&a, 3));
        assert!(r.allows(&AuthorId([2; 32]), 1_000));
        let info = AuthorInfo {
            author: a,
            role: DeviceRole::Node,
            not_before_ms: 10,
            not_after_ms: 20,
        };
        assert!(info.valid_at(10) && info.valid_at(20));
        assert!(!info.valid_at(9) && !info.valid_at(21));
    }
}
