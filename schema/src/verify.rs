//! Signature verification: one at a time with `verify_strict`, or many at
//! once with batch verification, with the same verdicts.
//!
//! ed25519-dalek's batch equation does not make the checks `verify_strict`
//! makes on its own: that the author key and the signature's `R` are not of
//! small order. With `R` the identity point a batch would accept a
//! signature that `verify_strict` refuses, and two nodes could disagree
//! about one entry. So before batching we make those checks ourselves (keys
//! once per author, `R` per entry). What remains is documented in
//! `docs/protocol.md`: an `R` with a small torsion component passes a batch
//! with probability 1/8 while `verify_strict` refuses it; only an author
//! attacking its own entries can produce one.

use std::collections::HashMap;
use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::entry::SignedEntry;
use crate::error::VerifyError;
use crate::ids::AuthorId;

/// Below this many signatures a batch is not faster than one by one.
const MIN_BATCH: usize = 4;
/// Batches are verified in chunks of this many; a failing chunk is
/// re-checked one by one to name the bad entries.
const CHUNK: usize = 256;

/// A signed entry whose signature has been checked. Only this module can
/// make one, so a function taking `VerifiedEntry` cannot be handed an
/// unchecked entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEntry(SignedEntry);

impl VerifiedEntry {
    pub fn signed(&self) -> &SignedEntry {
        &self.0
    }

    pub fn into_signed(self) -> SignedEntry {
        self.0
    }
}

impl std::ops::Deref for VerifiedEntry {
    type Target = SignedEntry;
    fn deref(&self) -> &SignedEntry {
        &self.0
    }
}

/// An entry that failed verification, returned whole so the caller can
/// quarantine it with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub entry: SignedEntry,
    pub error: VerifyError,
}

fn author_key(author: AuthorId) -> Result<VerifyingKey, VerifyError> {
    let key = VerifyingKey::from_bytes(author.as_bytes())
        .map_err(|_| VerifyError::BadAuthorKey(author))?;
    if key.is_weak() {
        return Err(VerifyError::BadAuthorKey(author));
    }
    Ok(key)
}

fn bad_signature(e: &SignedEntry) -> VerifyError {
    VerifyError::BadSignature {
        author: e.author(),
        seq: e.seq(),
    }
}

impl SignedEntry {
    /// Checks the signature with `verify_strict`.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let key = author_key(self.author())?;
        key.verify_strict(self.signed_bytes(), self.signature())
            .map_err(|_| bad_signature(self))
    }

    /// Checks the signature and returns the entry as verified.
    pub fn into_verified(self) -> Result<VerifiedEntry, Box<Rejected>> {
        match self.verify() {
            Ok(()) => Ok(VerifiedEntry(self)),
            Err(error) => Err(Box::new(Rejected { entry: self, error })),
        }
    }
}

/// Every 32-byte string that decodes to a point of small order: the eight
/// torsion points, the sign-bit variants of the two with x = 0, and the
/// non-canonical encodings y = p and y = p + 1 (of y = 0 and y = 1) with
/// either sign bit. Comparing bytes against this list costs nanoseconds
/// where decompressing `R` would cost microseconds.
fn small_order_encodings() -> &'static [[u8; 32]] {
    static LIST: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<[u8; 32]> = Vec::with_capacity(14);
        for point in EIGHT_TORSION {
            let c = point.compress().to_bytes();
            let mut flipped = c;
            flipped[31] ^= 0x80;
            list.push(c);
            list.push(flipped);
        }
        // y = p = 2^255 - 19 and y = p + 1, little-endian, both sign bits.
        for low in [0xed, 0xee] {
            let mut y = [0xff; 32];
            y[0] = low;
            y[31] = 0x7f;
            list.push(y);
            y[31] = 0xff;
            list.push(y);
        }
        // Keep only strings that really decode to a small-order point (a
        // flipped sign bit of a point with x != 0 is just the other point).
        list.retain(|b| {
            CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| p.is_small_order())
        });
        list.sort();
        list.dedup();
        list
    })
}

/// The check `verify_strict` makes that the batch equation does not: `R`
/// is not of small order. (An `R` that is not a point at all fails the
/// batch, and is then named by `verify_strict`.)
fn r_acceptable(sig: &Signature) -> bool {
    !small_order_encodings().contains(sig.r_bytes())
}

/// Verifies every entry's signature, in batches where that is faster, and
/// returns for each entry (same order) whether it holds.
pub fn verify_signatures(entries: &[SignedEntry]) -> Vec<Result<(), VerifyError>> {
    let mut verdicts: Vec<Result<(), VerifyError>> = Vec::with_capacity(entries.len());
    let mut keys: HashMap<AuthorId, Result<VerifyingKey, VerifyError>> = HashMap::new();
    // Entries that pass the pre-checks, with their key, waiting for a batch.
    let mut pending: Vec<(usize, VerifyingKey)> = Vec::with_capacity(entries.len().min(CHUNK));
    for (i, e) in entries.iter().enumerate() {
        let key = keys
            .entry(e.author())
            .or_insert_with(|| author_key(e.author()))
            .clone();
        verdicts.push(match key {
            Err(err) => Err(err),
            Ok(_) if !r_acceptable(e.signature()) => Err(bad_signature(e)),
            Ok(k) => {
                pending.push((i, k));
                Ok(())
            }
        });
        if pending.len() == CHUNK {
            settle(entries, &pending, &mut verdicts);
            pending.clear();
        }
    }
    settle(entries, &pending, &mut verdicts);
    verdicts
}

fn settle(
    entries: &[SignedEntry],
    pending: &[(usize, VerifyingKey)],
    verdicts: &mut [Result<(), VerifyError>],
) {
    if pending.len() >= MIN_BATCH {
        let messages: Vec<&[u8]> = pending
            .iter()
            .map(|(i, _)| entries[*i].signed_bytes())
            .collect();
        let sigs: Vec<Signature> = pending
            .iter()
            .map(|(i, _)| *entries[*i].signature())
            .collect();
        let keys: Vec<VerifyingKey> = pending.iter().map(|(_, k)| *k).collect();
        if ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok() {
            return;
        }
    }
    for (i, k) in pending {
        let e = &entries[*i];
        if k.verify_strict(e.signed_bytes(), e.signature()).is_err() {
            verdicts[*i] = Err(bad_signature(e));
        }
    }
}

/// Verifies many entries at once; good ones come back verified, bad ones
/// with the reason. Order is kept within each list.
pub fn verify_all(entries: Vec<SignedEntry>) -> (Vec<VerifiedEntry>, Vec<Rejected>) {
    let verdicts = verify_signatures(&entries);
    let mut good = Vec::with_capacity(entries.len());
    let mut bad = Vec::new();
    for (entry, verdict) in entries.into_iter().zip(verdicts) {
        match verdict {
            Ok(()) => good.push(VerifiedEntry(entry)),
            Err(error) => bad.push(Rejected { entry, error }),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_list_is_complete_for_the_known_encodings() {
        let list = small_order_encodings();
        // 8 canonical + 2 sign-bit variants (x = 0) + 4 non-canonical.
        assert_eq!(list.len(), 14);
        for p in EIGHT_TORSION {
            assert!(list.contains(&p.compress().to_bytes()));
        }
        // Cross-check on every string that differs from a listed one in its
        // lowest byte or sign bit: decodes to small order iff listed.
        for base in list.iter().copied() {
            for low in 0..=255u8 {
                for sign in [0u8, 0x80] {
                    let mut b = base;
                    b[0] = low;
                    b[31] = (b[31] & 0x7f) | sign;
                    let small = CompressedEdwardsY(b)
                        .decompress()
                        .is_some_and(|p| p.is_small_order());
                    assert_eq!(small, list.contains(&b), "{b:02x?}");
                }
            }
        }
    }
}
