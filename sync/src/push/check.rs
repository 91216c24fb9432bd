//! Checks 1–7 of a sensor push (the module doc of `push.rs`): everything
//! but the chain, without the store's writer. The signatures make it the
//! costly part.
//!
//! Never does: write to a store, or judge the chain (`commit.rs` does,
//! against the store as it is when it applies).

use sentinel_schema::{verify_all, AuthorId, Body, DeviceRole, Head, SignedEntry, VerifiedEntry};

use super::error::{PushError, PushRefusal};
use super::wire::decode;
use crate::message::MessageError;
use crate::store::SyncStore;
use crate::trust::{AuthorInfo, Revocations, TrustAnchor};
use crate::verify::{check_author, Refusal};

/// What [`verify`] needs of the store about a push's author, which the
/// caller reads before it takes the store's writer (see [`stored`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The author's certificate the store holds (DER), if any. Read only
    /// when the push carries none.
    pub certificate: Option<Vec<u8>>,
    /// The author's head in the store: only the `head_seq` of a refusal
    /// [`verify`] answers (the chain is judged by [`super::apply`], against the
    /// head when it runs).
    pub head: Option<Head>,
}

/// Reads what [`verify`] needs of `author` from `store`: its head, and its
/// certificate when `certificate` is true (the push carries none). A read;
/// it needs no writer.
pub fn stored<S: SyncStore + ?Sized>(
    store: &S,
    author: &AuthorId,
    certificate: bool,
) -> Result<Stored, S::Error> {
    Ok(Stored {
        certificate: if certificate {
            store.certificate(author)?
        } else {
            None
        },
        head: store.head(author)?,
    })
}

/// A push that passed checks 1–7 of [`crate::push`] ([`verify`]): hand it
/// to [`super::apply`] for check 8 and the store.
#[derive(Debug, Clone)]
pub struct Verified {
    pub(super) author: AuthorId,
    pub(super) certificate: Option<Vec<u8>>,
    pub(super) entries: Vec<VerifiedEntry>,
}

impl Verified {
    /// The push's author.
    pub fn author(&self) -> AuthorId {
        self.author
    }

    /// How many entries the push carries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it carries none (never: [`verify`] refuses an empty push).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Checks 1–7 of [`crate::push`]: everything but the chain, without the
/// store's writer. CPU-bound (the signatures): run it off the async
/// workers. `stored` is called once, with the push's author and whether
/// the push carries no certificate (so the stored one is wanted); its
/// error comes back as [`PushError::Store`]. [`stored`] reads it from a
/// [`SyncStore`].
///
/// The revocations are those in force now: a revocation learned between
/// `verify` and [`super::apply`] does not refuse this push (as it would not had
/// the push arrived a moment earlier); the next push is checked against it.
pub fn verify<E: std::error::Error + 'static>(
    trust: &dyn TrustAnchor,
    revocations: &Revocations,
    now_ms: u64,
    max_future_ms: u64,
    bytes: &[u8],
    stored: impl FnOnce(&AuthorId, bool) -> Result<Stored, E>,
) -> Result<Verified, PushError<E>> {
    let push = decode(bytes).map_err(PushError::Malformed)?;
    let mut entries = Vec::with_capacity(push.entries.len());
    for (index, raw) in push.entries.into_iter().enumerate() {
        let e =
            SignedEntry::from_bytes(raw).map_err(|error| PushError::BadEntry { index, error })?;
        entries.push(e);
    }
    let Some(first) = entries.first() else {
        // The decoder refuses an empty list; say so rather than panic.
        return Err(PushError::Malformed(MessageError::OutOfRange {
            field: "entries",
            what: "no entries".into(),
        }));
    };
    let author = first.author();
    let first_seq = first.seq();
    for (index, e) in entries.iter().enumerate() {
        if e.author() != author {
            return Err(PushError::MixedAuthors {
                index,
                expected: author,
                found: e.author(),
            });
        }
    }

    let known = match &push.certificate {
        Some(der) => {
            let info = trust
                .verify_certificate(der)
                .map_err(PushError::BadCertificate)?;
            if info.author != author {
                return Err(PushError::CertificateMismatch {
                    certificate: info.author,
                    author,
                });
            }
            let known = stored(&author, false).map_err(PushError::Store)?;
            (Some(info), known.head)
        }
        None => {
            let known = stored(&author, true).map_err(PushError::Store)?;
            let info = known
                .certificate
                .and_then(|der| trust.stored_certificate(&der).ok())
                .filter(|info| info.author == author);
            (info, known.head)
        }
    };
    let (info, head) = known;

    let head_seq = head.map_or(0, |h| h.seq);
    let refused = |index: usize, e: &SignedEntry, refusal| PushError::Refused {
        index,
        author,
        seq: e.seq(),
        id: e.id(),
        refusal: Box::new(refusal),
        head_seq,
    };
    for (index, e) in entries.iter().enumerate() {
        let expected = first_seq.saturating_add(index as u64);
        if e.seq() != expected {
            let refusal = PushRefusal::OutOfOrder {
                expected,
                found: e.seq(),
            };
            return Err(refused(index, e, refusal));
        }
    }

    // Seqs ascend by one, so an entry's index is its seq minus the first.
    let (good, bad) = verify_all(entries);
    if let Some(r) = bad.into_iter().next() {
        let index = (r.entry.seq() - first_seq) as usize;
        let refusal = PushRefusal::Check(Refusal::Signature(r.error));
        return Err(refused(index, &r.entry, refusal));
    }

    let last_valid_seq = [
        revocations.last_valid_seq(&author),
        trust.entry_revocation(&author),
    ]
    .into_iter()
    .flatten()
    .min();
    for (index, e) in good.iter().enumerate() {
        check_entry(e, info, last_valid_seq, now_ms, max_future_ms)
            .map_err(|refusal| refused(index, e, refusal))?;
    }
    Ok(Verified {
        author,
        certificate: push.certificate,
        entries: good,
    })
}

/// Check 7 of [`crate::push`], for one signature-checked entry.
fn check_entry(
    e: &SignedEntry,
    info: Option<AuthorInfo>,
    last_valid_seq: Option<u64>,
    now_ms: u64,
    max_future_ms: u64,
) -> Result<(), PushRefusal> {
    let entry = e.entry();
    check_author(entry, info, last_valid_seq).map_err(PushRefusal::Check)?;
    if let Some(info) = info {
        if info.role != DeviceRole::Sensor {
            return Err(PushRefusal::NotASensor(info.role));
        }
    }
    let latest = now_ms.saturating_add(max_future_ms);
    if let Body::SensorReading(reading) = &entry.body {
        if reading.measured_ms > latest {
            return Err(PushRefusal::FutureMeasurement {
                measured_ms: reading.measured_ms,
                now_ms,
                max_future_ms,
            });
        }
    }
    if entry.hlc.wall_ms > latest {
        return Err(PushRefusal::FutureClock {
            wall_ms: entry.hlc.wall_ms,
            now_ms,
            max_future_ms,
        });
    }
    Ok(())
}
