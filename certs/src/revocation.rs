//! Revocation lists: a CA-signed document naming revoked author keys and,
//! for each, the last seq of that author that stays valid.
//!
//! Not an X.509 CRL: a CRL revokes certificates as of a time, and a node's
//! clock in the field may be days off. Naming a seq instead means every
//! node that holds the same list reaches the same verdict about every
//! entry, whatever its clock says. Lists are whole documents: a list with
//! a higher `number` replaces the one held.
//!
//! # Encoding (canonical CBOR, shortest heads, definite lengths)
//!
//! ```text
//! signed  = [ payload: bstr, signature: bstr .size 64 ]
//! payload = [ "sentinel-revocations-v1", number: uint, issued_ms: uint,
//!             [ * [ key: bstr .size 32, last_valid_seq: uint, reason: tstr ] ] ]
//! ```
//!
//! `signature` is the CA's ed25519 signature over the `payload` bytes.
//! Entries are sorted by key, strictly ascending (so each key appears at
//! most once). A document is at most [`MAX_LIST_BYTES`], has at most
//! [`MAX_REVOKED`] entries, and reasons of at most [`MAX_REASON_BYTES`].

use std::path::Path;

use ed25519_dalek::Signature;
pub use sentinel_schema::limits::MAX_REASON_BYTES;
use sentinel_schema::AuthorId;

use crate::ca::Ca;
use crate::ca_cert::CaCert;
use crate::cbor::{Reader, Writer};
use crate::error::{CertsError, RevocationError};
use crate::files::{read_limited, replace_file};

/// One revoked author: the same shape, and meaning, as the `Revocation`
/// entry body (`last_valid_seq` 0 means none of its entries stay valid).
pub type Revoked = sentinel_schema::Revocation;

/// Largest signed revocation list, checked before decoding.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;
/// Most entries in one list.
pub const MAX_REVOKED: usize = 100_000;
/// Domain separation: the CA key also signs certificates, so the payload
/// says what it is.
const CONTEXT: &str = "sentinel-revocations-v1";
/// Fewest bytes one encoded entry can take (array head, 32-byte key with
/// its 2-byte head, one-byte seq, empty reason), used to bound the entry
/// count against the bytes that remain before allocating.
const MIN_ENTRY_BYTES: usize = 1 + 2 + 32 + 1 + 1;

/// A revocation list, as signed by the deployment CA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RevocationList {
    /// Strictly increasing from one list to the next; the higher number
    /// wins. 0 is the empty list a device holds before it has any.
    pub number: u64,
    /// When the CA signed the list, Unix ms (the CA machine's clock). Used
    /// only by [`crate::FreshnessPolicy::MaxAge`].
    pub issued_ms: u64,
    /// Revoked authors. Lists returned by [`RevocationList::verify`] are
    /// sorted by key.
    pub revoked: Vec<Revoked>,
}

impl RevocationList {
    /// The list a device holds before it learns any: number 0, issued at
    /// 0 ms, nobody revoked.
    pub fn empty() -> RevocationList {
        RevocationList::default()
    }

    /// Whether this list supersedes `other`.
    pub fn newer_than(&self, other: &RevocationList) -> bool {
        self.number > other.number
    }

    /// The revocation of `author`, if it is revoked. Works on any list,
    /// sorted or not.
    pub fn revocation_of(&self, author: &AuthorId) -> Option<&Revoked> {
        self.revoked.iter().find(|r| r.key == *author)
    }

    /// [`RevocationList::revocation_of`] by binary search, for lists known
    /// to be sorted by key: verified lists and the empty list, i.e. the
    /// only ones a [`crate::RevocationHandle`] holds.
    pub(crate) fn revocation_of_sorted(&self, author: &AuthorId) -> Option<&Revoked> {
        self.revoked
            .binary_search_by(|r| r.key.cmp(author))
            .ok()
            .and_then(|i| self.revoked.get(i))
    }

    /// Signs the list with the CA key, in the canonical encoding (entries
    /// sorted by key). Refuses lists that [`RevocationList::verify`] would
    /// refuse, so nothing unverifiable is ever signed.
    pub fn sign(&self, ca: &Ca) -> Result<Vec<u8>, RevocationError> {
        check_limits(&self.revoked)?;
        let mut sorted: Vec<&Revoked> = self.revoked.iter().collect();
        sorted.sort_by_key(|r| r.key);
        if let Some(pair) = sorted.windows(2).find(|p| p[0].key == p[1].key) {
            return Err(RevocationError::DuplicateKey(pair[0].key));
        }
        let payload = encode_payload(self.number, self.issued_ms, &sorted);
        let signature = ca.sign(&payload);
        let signed = encode_signed(&payload, &signature.to_bytes());
        if signed.len() > MAX_LIST_BYTES {
            return Err(RevocationError::TooLarge {
                len: signed.len(),
                max: MAX_LIST_BYTES,
            });
        }
        Ok(signed)
    }

    /// Checks a signed list against the CA and decodes it. The size is
    /// checked before decoding and the signature before the payload is
    /// parsed; the encoding must be the canonical one.
    pub fn verify(bytes: &[u8], ca: &CaCert) -> Result<RevocationList, RevocationError> {
        if bytes.len() > MAX_LIST_BYTES {
            return Err(RevocationError::TooLarge {
                len: bytes.len(),
                max: MAX_LIST_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        if r.array("expected the signed list array")? != 2 {
            return Err(RevocationError::Malformed(
                "the signed list must hold payload and signature",
            ));
        }
        let payload = r.bytes("expected the payload byte string")?;
        let signature = r.bytes("expected the signature byte string")?;
        r.finish()?;
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| RevocationError::Malformed("the signature is not 64 bytes"))?;
        if encode_signed(payload, &signature) != bytes {
            return Err(RevocationError::NotCanonical);
        }
        ca.key()
            .verify_strict(payload, &Signature::from_bytes(&signature))
            .map_err(|_| RevocationError::BadSignature)?;
        let list = decode_payload(payload)?;
        let sorted: Vec<&Revoked> = list.revoked.iter().collect();
        if encode_payload(list.number, list.issued_ms, &sorted) != payload {
            return Err(RevocationError::NotCanonical);
        }
        Ok(list)
    }
}

/// Reads a signed revocation list file (at most [`MAX_LIST_BYTES`]),
/// without verifying it: pass the bytes to [`RevocationList::verify`] or
/// [`crate::RevocationHandle::offer`].
pub fn read_signed_list(path: &Path) -> Result<Vec<u8>, CertsError> {
    read_limited(path, MAX_LIST_BYTES as u64)
}

/// Replaces the signed revocation list file at `path` atomically (a list
/// is meant to be superseded, unlike keys and certificates).
pub fn write_signed_list(path: &Path, signed: &[u8]) -> Result<(), CertsError> {
    replace_file(path, signed)
}

fn check_limits(revoked: &[Revoked]) -> Result<(), RevocationError> {
    if revoked.len() > MAX_REVOKED {
        return Err(RevocationError::TooManyEntries {
            n: revoked.len(),
            max: MAX_REVOKED,
        });
    }
    if let Some(r) = revoked.iter().find(|r| r.reason.len() > MAX_REASON_BYTES) {
        return Err(RevocationError::ReasonTooLong {
            len: r.reason.len(),
            max: MAX_REASON_BYTES,
        });
    }
    Ok(())
}

fn encode_payload(number: u64, issued_ms: u64, sorted: &[&Revoked]) -> Vec<u8> {
    let mut w = Writer::default();
    w.array(4);
    w.text(CONTEXT);
    w.uint(number);
    w.uint(issued_ms);
    w.array(sorted.len());
    for r in sorted {
        w.array(3);
        w.bytes(r.key.as_bytes());
        w.uint(r.last_valid_seq);
        w.text(&r.reason);
    }
    w.out
}

fn encode_signed(payload: &[u8], signature: &[u8; 64]) -> Vec<u8> {
    let mut w = Writer::default();
    w.array(2);
    w.bytes(payload);
    w.bytes(signature);
    w.out
}

fn decode_payload(payload: &[u8]) -> Result<RevocationList, RevocationError> {
    let malformed = RevocationError::Malformed;
    let mut r = Reader::new(payload);
    if r.array("expected the payload array")? != 4 {
        return Err(malformed("the payload must have 4 fields"));
    }
    if r.text("expected the context string")? != CONTEXT {
        return Err(malformed("not a sentinel revocation list (wrong context)"));
    }
    let number = r.uint("expected the list number")?;
    let issued_ms = r.uint("expected the issue time")?;
    let n = r.array("expected the entries array")?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > MAX_REVOKED {
        return Err(RevocationError::TooManyEntries {
            n,
            max: MAX_REVOKED,
        });
    }
    if n.saturating_mul(MIN_ENTRY_BYTES) > r.remaining() {
        return Err(malformed("more entries declared than bytes remain"));
    }
    let mut revoked: Vec<Revoked> = Vec::with_capacity(n);
    for _ in 0..n {
        if r.array("expected an entry array")? != 3 {
            return Err(malformed("an entry must have 3 fields"));
        }
        let key: [u8; 32] = r
            .bytes("expected the revoked key")?
            .try_into()
            .map_err(|_| malformed("a revoked key is not 32 bytes"))?;
        let last_valid_seq = r.uint("expected the last valid seq")?;
        let reason = r.text("expected the reason")?;
        if reason.len() > MAX_REASON_BYTES {
            return Err(RevocationError::ReasonTooLong {
                len: reason.len(),
                max: MAX_REASON_BYTES,
            });
        }
        let key = AuthorId(key);
        if let Some(prev) = revoked.last() {
            if prev.key == key {
                return Err(RevocationError::DuplicateKey(key));
            }
            if prev.key > key {
                return Err(RevocationError::Unsorted);
            }
        }
        revoked.push(Revoked {
            key,
            last_valid_seq,
            reason: reason.to_string(),
        });
    }
    r.finish()?;
    Ok(RevocationList {
        number,
        issued_ms,
        revoked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_layout_is_stable() {
        let r = Revoked {
            key: AuthorId([0xaa; 32]),
            last_valid_seq: 7,
            reason: "lost".to_string(),
        };
        let bytes = encode_payload(1, 2, &[&r]);
        let mut expected = vec![0x84, 0x77];
        expected.extend_from_slice(CONTEXT.as_bytes());
        expected.extend_from_slice(&[0x01, 0x02, 0x81, 0x83, 0x58, 0x20]);
        expected.extend_from_slice(&[0xaa; 32]);
        expected.extend_from_slice(&[0x07, 0x64, b'l', b'o', b's', b't']);
        assert_eq!(bytes, expected);
        assert_eq!(
            decode_payload(&bytes).unwrap(),
            RevocationList {
                number: 1,
                issued_ms: 2,
                revoked: vec![r]
            }
        );
    }

    #[test]
    fn decoder_refuses_unsorted_and_oversized_counts() {
        let a = Revoked {
            key: AuthorId([1; 32]),
            last_valid_seq: 0,
            reason: String::new(),
        };
        let b = Revoked {
            key: AuthorId([2; 32]),
            ..a.clone()
        };
        assert_eq!(
            decode_payload(&encode_payload(1, 0, &[&b, &a])),
            Err(RevocationError::Unsorted)
        );
        assert_eq!(
            decode_payload(&encode_payload(1, 0, &[&a, &a])),
            Err(RevocationError::DuplicateKey(a.key))
        );
        // A count far beyond the bytes present is refused before allocating.
        let mut w = Writer::default();
        w.array(4);
        w.text(CONTEXT);
        w.uint(1);
        w.uint(0);
        w.array(90_000);
        assert_eq!(
            decode_payload(&w.out),
            Err(RevocationError::Malformed(
                "more entries declared than bytes remain"
            ))
        );
    }
}
