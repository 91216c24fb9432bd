//! Sensor push: entries a sensor sends in one HTTP request body
//! (`POST /api/v1/sensors/entries`, `docs/protocol.md` part 3), checked
//! and applied all or nothing. Pure: node and hub call [`receive`] from
//! their routes with their store, trust anchor, revocation list and clock
//! reading.
//!
//! Checks, in this order; the first that fails refuses the whole push and
//! nothing is stored (except fork evidence, below):
//! 1. the body decodes ([`decode`]): size, well-formedness, shape;
//! 2. every entry decodes as a signed entry (a NaN value, for one, does
//!    not);
//! 3. one author: every entry is by the same author;
//! 4. the certificate, if sent, verifies and is the author's;
//! 5. seqs ascend by one through the push;
//! 6. every signature, in one batch verification;
//! 7. per entry, the checks a sync session makes (certificate known and
//!    valid at the HLC time, revocation, role may write the kind), then:
//!    the author is a sensor, and neither `measured_ms` nor `hlc.wall_ms`
//!    is more than `max_future_ms` ahead of `now_ms`;
//! 8. the chain against the store: an entry the store holds is a
//!    duplicate (accepted, nothing to do); another entry at a held seq is
//!    a fork; a gap, a wrong `prev` or a first seq above 1 is refused.
//!
//! A fork is refused, but its entry is first handed to
//! [`SyncStore::apply`] on its own, which records it as evidence (the
//! entry held first stays): a fork proves the sensor's key signed two
//! histories, whoever sent it. Nothing else of that push is applied.
//!
//! When every check passes, the certificate is stored (if the store has
//! none for the author) and the new entries are applied in one
//! [`SyncStore::apply`]. Check 8 reads the store before that apply:
//! callers run it under the store's single writer, as they do for
//! sessions, so nothing changes in between. Should the apply report
//! anything but the new entries applied, the push answers
//! [`PushError::StoreChanged`].
//!
//! [`receive`] is two steps, which a caller may run apart: [`verify`]
//! (checks 1–7: no writer needed, only the author's stored certificate
//! and head, [`stored`]; the signatures make it the costly part) and
//! [`apply`] (check 8 and the store, under the writer). Between the two
//! the store may change: [`apply`] reads the chain itself, so a push
//! verified before another stored the same entries is judged a
//! duplicate, a fork or a gap against what is held when it applies. The
//! revocations are those [`verify`] was given: one learned in between
//! refuses the next push, not this one.
//!
//! The files: `wire.rs`, the body's bytes; `error.rs`, why a push is
//! refused; `check.rs`, checks 1–7 ([`verify`]); `commit.rs`, check 8, the
//! store and the report ([`apply`]).

mod check;
mod commit;
mod error;
mod wire;

use crate::store::SyncStore;
use crate::trust::{Revocations, TrustAnchor};

pub use check::{stored, verify, Stored, Verified};
pub use commit::{apply, Accepted, Outcome, PushReport, PushedEntry};
pub use error::{PushError, PushRefusal};
pub use wire::{decode, encode, Push, MAX_PUSH_BYTES, MAX_PUSH_ENTRIES};

/// How far ahead of the receiver's clock a reading's `measured_ms` and
/// `hlc.wall_ms` may be, by default: five minutes. A sensor clock further
/// ahead is broken or lying, and its readings would sort after every
/// honest one.
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// Checks a push body and applies it, all or nothing (see the module
/// doc). `now_ms` is the receiver's clock; `max_future_ms` is usually
/// [`MAX_FUTURE_MS`]; `revocations` is the CA list in force (hub
/// revocation entries come from [`TrustAnchor::entry_revocation`]).
///
/// [`verify`] then [`apply`], both against `store`: a caller with a single
/// writer runs [`verify`] before it takes the writer and only [`apply`]
/// under it.
pub fn receive<S: SyncStore>(
    store: &mut S,
    trust: &dyn TrustAnchor,
    revocations: &Revocations,
    now_ms: u64,
    max_future_ms: u64,
    bytes: &[u8],
) -> Result<Accepted, PushError<S::Error>> {
    let verified = {
        let store = &*store;
        verify(
            trust,
            revocations,
            now_ms,
            max_future_ms,
            bytes,
            |author, certificate| stored(store, author, certificate),
        )?
    };
    apply(store, verified, now_ms)
}

#[cfg(test)]
mod tests;
