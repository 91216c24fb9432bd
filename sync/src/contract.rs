//! The [`SyncStore`] contract as a test suite any implementation can run:
//! `run_contract_suite(|| MyStore::open_temporary())`. It panics, naming
//! the broken rule, on the first failure.
//!
//! What it cannot check from outside is stated on the trait: `apply` is
//! atomic and durable (when it returns `Ok`, everything is committed; on
//! `Err`, nothing). Each implementation proves that with its own crash
//! tests.

// A contract suite reports failures by panicking, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use sentinel_schema::{verify_all, AuthorId, Head, SignedEntry, VerifiedEntry};

use crate::reject::{RejectReason, Rejection};
use crate::store::SyncStore;
use crate::testing::{chain, key, media, reading, sign_after, TestCa};

fn verified(entries: &[SignedEntry]) -> Vec<VerifiedEntry> {
    let (good, bad) = verify_all(entries.to_vec());
    assert!(bad.is_empty(), "test entries verify");
    good
}

fn head_of(e: &SignedEntry) -> Head {
    Head {
        seq: e.seq(),
        id: e.id(),
    }
}

const NOW: u64 = 1_790_000_000_000;

/// Runs every check on fresh stores from `make`.
pub fn run_contract_suite<S: SyncStore>(make: impl Fn() -> S) {
    empty_store(&make());
    apply_appends_and_is_idempotent(&mut make());
    apply_sorts_its_input(&mut make());
    gap_is_quarantined(&mut make());
    chain_must_start_at_one_and_link(&mut make());
    fork_is_reported_and_first_entry_stays(&mut make());
    entries_after_orders_and_limits(&mut make());
    quarantine_keeps_entries_out_of_the_log(&mut make());
    certificates_round_trip(&mut make());
    revocation_list_round_trips(&mut make());
}

fn empty_store<S: SyncStore>(s: &S) {
    assert_eq!(
        s.heads().unwrap().n_authors(),
        0,
        "a new store has no heads"
    );
    let a = AuthorId([1; 32]);
    assert_eq!(s.head(&a).unwrap(), None, "no head for an unknown author");
    assert!(s.entries_after(&a, 0, 10, usize::MAX).unwrap().is_empty());
    assert_eq!(s.certificate(&a).unwrap(), None);
    assert_eq!(s.revocation_list().unwrap(), None);
}

fn apply_appends_and_is_idempotent<S: SyncStore>(s: &mut S) {
    let k = key(1);
    let log = chain(&k, 5, reading);
    let report = s.apply(verified(&log), NOW).unwrap();
    assert_eq!(report.applied, 5, "a chain from seq 1 applies whole");
    assert_eq!(report.duplicates, 0);
    assert!(report.forks.is_empty() && report.quarantined.is_empty());
    assert_eq!(
        report.max_hlc,
        Some(log[4].entry().hlc),
        "max_hlc is the newest applied"
    );
    let author = log[0].author();
    assert_eq!(s.head(&author).unwrap(), Some(head_of(&log[4])));
    assert_eq!(s.heads().unwrap().get(&author), Some(head_of(&log[4])));

    let again = s.apply(verified(&log), NOW).unwrap();
    assert_eq!(again.applied, 0, "applying twice adds nothing");
    assert_eq!(again.duplicates, 5, "duplicates are counted");
    assert_eq!(again.max_hlc, None);
    assert_eq!(s.heads().unwrap().n_entries(), 5);
}

fn apply_sorts_its_input<S: SyncStore>(s: &mut S) {
    let a = chain(&key(2), 3, reading);
    let b = chain(&key(3), 2, |i| media(i, 10));
    let mut mixed = vec![
        a[2].clone(),
        b[1].clone(),
        a[0].clone(),
        b[0].clone(),
        a[1].clone(),
    ];
    mixed.reverse();
    let report = s.apply(verified(&mixed), NOW).unwrap();
    assert_eq!(report.applied, 5, "apply takes entries in any order");
    let heads = s.heads().unwrap();
    assert_eq!(heads.n_authors(), 2);
    assert_eq!(heads.get(&a[0].author()), Some(head_of(&a[2])));
    assert_eq!(heads.get(&b[0].author()), Some(head_of(&b[1])));
}

fn gap_is_quarantined<S: SyncStore>(s: &mut S) {
    let log = chain(&key(4), 4, reading);
    s.apply(verified(&log[..2]), NOW).unwrap();
    let report = s.apply(verified(&log[3..]), NOW).unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(report.quarantined.len(), 1, "a gap is quarantined");
    assert_eq!(report.quarantined[0].id, log[3].id());
    assert_eq!(
        report.quarantined[0].reason,
        RejectReason::Gap,
        "with the reason `gap`"
    );
    assert_eq!(s.head(&log[0].author()).unwrap(), Some(head_of(&log[1])));
}

fn chain_must_start_at_one_and_link<S: SyncStore>(s: &mut S) {
    let log = chain(&key(5), 3, reading);
    let report = s.apply(verified(&log[1..2]), NOW).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].reason, RejectReason::NotStartingAtOne);
    assert_eq!(s.head(&log[0].author()).unwrap(), None);

    // Seq 2 whose prev is not the held seq 1.
    let k = key(5);
    s.apply(verified(&log[..1]), NOW).unwrap();
    let other_first = sign_after(&k, None, NOW, reading(99));
    let stray = sign_after(&k, Some(&other_first), NOW, reading(100));
    let report = s.apply(verified(&[stray]), NOW).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].reason, RejectReason::WrongPrev);
}

fn fork_is_reported_and_first_entry_stays<S: SyncStore>(s: &mut S) {
    let k = key(6);
    let log = chain(&k, 3, reading);
    s.apply(verified(&log), NOW).unwrap();
    let rival = sign_after(&k, Some(&log[0]), NOW + 7, reading(1_000));
    assert_eq!(rival.seq(), 2);
    assert_ne!(rival.id(), log[1].id());
    let report = s
        .apply(verified(std::slice::from_ref(&rival)), NOW)
        .unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(
        report.forks,
        vec![(k_author(&log), 2, rival.id())],
        "a fork is reported with the new entry's id"
    );
    assert_eq!(s.head(&k_author(&log)).unwrap(), Some(head_of(&log[2])));
    let held = s.entries_after(&k_author(&log), 1, 1, usize::MAX).unwrap();
    assert_eq!(held, vec![log[1].clone()], "the entry held first stays");
    // Reported again when seen again; never merged.
    let again = s.apply(verified(&[rival]), NOW).unwrap();
    assert_eq!(again.forks.len(), 1);
    assert_eq!(again.applied, 0);
}

fn k_author(log: &[SignedEntry]) -> AuthorId {
    log[0].author()
}

fn entries_after_orders_and_limits<S: SyncStore>(s: &mut S) {
    let log = chain(&key(7), 10, |i| media(i, 50));
    let author = log[0].author();
    s.apply(verified(&log), NOW).unwrap();
    let all = s.entries_after(&author, 0, 100, usize::MAX).unwrap();
    assert_eq!(all, log, "entries_after returns the chain in seq order");
    let mid = s.entries_after(&author, 3, 4, usize::MAX).unwrap();
    assert_eq!(mid, log[3..7].to_vec(), "after and max_entries");
    assert!(s
        .entries_after(&author, 10, 5, usize::MAX)
        .unwrap()
        .is_empty());
    assert!(s
        .entries_after(&author, 99, 5, usize::MAX)
        .unwrap()
        .is_empty());
    let len = log[0].as_bytes().len();
    let two = s.entries_after(&author, 0, 100, 2 * len + len / 2).unwrap();
    assert_eq!(two, log[..2].to_vec(), "max_bytes bounds the total");
    let one = s.entries_after(&author, 0, 100, 0).unwrap();
    assert_eq!(
        one,
        log[..1].to_vec(),
        "the first entry comes whatever its size"
    );
}

fn quarantine_keeps_entries_out_of_the_log<S: SyncStore>(s: &mut S) {
    let log = chain(&key(8), 2, reading);
    let rejected = || {
        vec![Rejection {
            entry: log[0].clone(),
            reason: RejectReason::RoleNotAllowed,
            detail: "test".into(),
        }]
    };
    s.quarantine(rejected(), NOW).unwrap();
    s.quarantine(rejected(), NOW)
        .expect("quarantining an entry twice is not an error");
    assert_eq!(
        s.head(&log[0].author()).unwrap(),
        None,
        "quarantined is not held"
    );
    assert!(s
        .entries_after(&log[0].author(), 0, 10, usize::MAX)
        .unwrap()
        .is_empty());
}

fn certificates_round_trip<S: SyncStore>(s: &mut S) {
    let ca = TestCa::new(1);
    let a = k_author(&chain(&key(9), 1, reading));
    let b = AuthorId([9; 32]);
    let der_a = ca.certificate(a, sentinel_schema::DeviceRole::Node);
    let der_b = ca.certificate(b, sentinel_schema::DeviceRole::Sensor);
    s.add_certificates(vec![(a, der_a.clone()), (b, der_b.clone())])
        .unwrap();
    assert_eq!(s.certificate(&a).unwrap(), Some(der_a));
    assert_eq!(s.certificate(&b).unwrap(), Some(der_b));
    assert_eq!(s.certificate(&AuthorId([3; 32])).unwrap(), None);
}

fn revocation_list_round_trips<S: SyncStore>(s: &mut S) {
    let ca = TestCa::new(1);
    let one = ca.revocation_list(1, &BTreeMap::new());
    let two = ca.revocation_list(2, &[(AuthorId([1; 32]), 4)].into_iter().collect());
    s.set_revocation_list(one.clone()).unwrap();
    assert_eq!(s.revocation_list().unwrap(), Some(one));
    s.set_revocation_list(two.clone()).unwrap();
    assert_eq!(
        s.revocation_list().unwrap(),
        Some(two),
        "a newer list replaces"
    );
}
