//! `verify` and `apply` run apart, as a server with one writer runs them:
//! the chain is judged against the store when `apply` runs.

use super::*;

impl World {
    /// Checks 1–7 only, against the store as it is now.
    fn verify(&self, bytes: &[u8]) -> Result<Verified, PushError<MemoryStoreError>> {
        let store = &self.store;
        verify(
            &self.anchor,
            &self.revocations,
            NOW,
            MAX_FUTURE_MS,
            bytes,
            |author, certificate| stored(store, author, certificate),
        )
    }

    fn apply(&mut self, verified: Verified) -> Result<Accepted, PushError<MemoryStoreError>> {
        apply(&mut self.store, verified, NOW)
    }
}

#[test]
fn verify_reads_the_stored_certificate_only_when_none_is_sent() {
    let w = world();
    let entries = w.readings(2);
    let cert = w.cert.clone();
    let mut asked = Vec::new();
    let verified = verify(
        &w.anchor,
        &w.revocations,
        NOW,
        MAX_FUTURE_MS,
        &encode(Some(&cert), &entries),
        |author, certificate| {
            asked.push((*author, certificate));
            Ok::<_, MemoryStoreError>(Stored::default())
        },
    )
    .unwrap();
    assert_eq!(asked, vec![(author_of(&w.sensor), false)]);
    assert_eq!(
        (verified.author(), verified.len()),
        (author_of(&w.sensor), 2)
    );
    // No certificate sent, none held: unknown, whatever the chain.
    let err = w.verify(&encode(None, &entries)).unwrap_err();
    assert_eq!(err.code(), "unknown_author");
    // The closure's failure is the store's.
    let err = verify(
        &w.anchor,
        &w.revocations,
        NOW,
        MAX_FUTURE_MS,
        &encode(None, &entries),
        |_, _| Err(MemoryStoreError::Injected),
    )
    .unwrap_err();
    assert_eq!(err.code(), "store_failed");
}

#[test]
fn verified_pushes_are_judged_against_the_store_when_applied() {
    let mut w = world();
    let entries = w.readings(4);
    let cert = w.cert.clone();
    // Two sensors' retries verified side by side, before either applies.
    let first = w.verify(&encode(Some(&cert), &entries[..3])).unwrap();
    let replay = w.verify(&encode(Some(&cert), &entries[..3])).unwrap();
    // A later push that does not start the chain: verify does not judge
    // the chain, apply does.
    let later = w.verify(&encode(Some(&cert), &entries[3..])).unwrap();
    let report = w.apply(first).unwrap();
    assert_eq!(
        (report.report.n_stored, report.certificate_stored),
        (3, true)
    );
    let report = w.apply(replay).unwrap();
    assert_eq!((report.report.n_stored, report.report.n_duplicates), (0, 3));
    assert!(!report.certificate_stored);
    assert!(report.stored.is_empty());
    let report = w.apply(later).unwrap();
    assert_eq!(report.report.n_stored, 1);
    assert_eq!(w.store.log(&author_of(&w.sensor)), entries.as_slice());
}

#[test]
fn a_fork_or_gap_verified_early_is_found_when_applied() {
    let mut w = world();
    let entries = w.readings(3);
    let cert = w.cert.clone();
    w.accept(&entries[..1]);
    // Verified while the store holds seq 1 only: another seq 2 extends it.
    let other2 = sign_after(
        &w.sensor,
        Some(&entries[0]),
        1_790_000_000_001,
        reading_at(1_790_000_000_001, 9.99),
    );
    let fork = w
        .verify(&encode(None, std::slice::from_ref(&other2)))
        .unwrap();
    // Seq 3 alone: a gap while the store holds seq 1, the next entry once
    // it holds seq 2.
    let third = w.verify(&encode(None, &entries[2..])).unwrap();
    let gap = w.verify(&encode(Some(&cert), &entries[2..])).unwrap();
    let err = w.apply(gap).unwrap_err();
    assert_eq!((err.code(), err.index()), ("gap", Some(0)));
    assert!(matches!(err, PushError::Refused { head_seq: 1, .. }));
    // The honest seq 2 arrives first; the fork verified earlier is found.
    w.accept(&entries[1..2]);
    let before = w.store.log(&author_of(&w.sensor)).to_vec();
    let err = w.apply(fork).unwrap_err();
    assert!(err.is_fork(), "{err}");
    assert!(matches!(
        err,
        PushError::Refused {
            seq: 2,
            head_seq: 2,
            ..
        }
    ));
    assert_eq!(w.store.forks().len(), 1);
    assert_eq!(w.store.forks()[0].entry, other2);
    assert_eq!(w.store.log(&author_of(&w.sensor)), before.as_slice());
    // Seq 3 verified while it was a gap now extends the chain.
    assert_eq!(w.apply(third).unwrap().report.n_stored, 1);
    assert_eq!(w.store.log(&author_of(&w.sensor)), entries.as_slice());
}

#[test]
fn a_store_failure_applies_nothing() {
    let mut w = world();
    let entries = w.readings(2);
    w.store.fail_next_apply();
    let cert = w.cert.clone();
    let err = w.push(&encode(Some(&cert), &entries)).unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_failed", 503));
    assert_eq!(w.store.n_entries(), 0);
    w.accept(&entries);
}
