use ed25519_dalek::Signer;
use sentinel_certs::{
    AuthorId, Offered, RevocationError, RevocationHandle, RevocationList, Revoked, MAX_LIST_BYTES,
    MAX_REASON_BYTES, MAX_REVOKED,
};

use crate::common::{ca, key, T0};

fn revoked(byte: u8, seq: u64, reason: &str) -> Revoked {
    Revoked {
        key: AuthorId([byte; 32]),
        last_valid_seq: seq,
        reason: reason.to_string(),
    }
}

fn list(number: u64) -> RevocationList {
    RevocationList {
        number,
        issued_ms: T0,
        // Deliberately unsorted: signing sorts.
        revoked: vec![revoked(9, 0, "stolen"), revoked(2, 41, "lost at sea")],
    }
}

#[test]
fn sign_verify_round_trip_sorts_by_key() {
    let ca = ca("D", 1);
    let signed = list(7).sign(&ca).unwrap();
    let back = RevocationList::verify(&signed, ca.cert()).unwrap();
    assert_eq!(back.number, 7);
    assert_eq!(back.issued_ms, T0);
    assert_eq!(
        back.revoked,
        vec![revoked(2, 41, "lost at sea"), revoked(9, 0, "stolen")]
    );
    // Deterministic: the same list signs to the same bytes (ed25519
    // signatures are deterministic too).
    assert_eq!(back.sign(&ca).unwrap(), signed);
    assert_eq!(
        back.revocation_of(&AuthorId([2; 32]))
            .map(|r| r.last_valid_seq),
        Some(41)
    );
    assert!(back.revocation_of(&AuthorId([3; 32])).is_none());
    let empty = RevocationList::empty().sign(&ca).unwrap();
    assert_eq!(
        RevocationList::verify(&empty, ca.cert()).unwrap(),
        RevocationList::empty()
    );
}

#[test]
fn newer_means_a_higher_number() {
    assert!(list(2).newer_than(&list(1)));
    assert!(!list(1).newer_than(&list(1)));
    assert!(!list(1).newer_than(&list(2)));
    assert!(list(1).newer_than(&RevocationList::empty()));
}

#[test]
fn every_tampered_byte_is_refused() {
    let ca = ca("D", 1);
    let signed = list(1).sign(&ca).unwrap();
    for i in 0..signed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = signed.clone();
            bad[i] ^= bit;
            assert!(
                RevocationList::verify(&bad, ca.cert()).is_err(),
                "flipping bit {bit:#x} of byte {i} was accepted"
            );
        }
    }
    let mut longer = signed.clone();
    longer.push(0);
    assert!(RevocationList::verify(&longer, ca.cert()).is_err());
    assert!(RevocationList::verify(&signed[..signed.len() - 1], ca.cert()).is_err());
}

#[test]
fn a_list_signed_by_another_ca_is_refused() {
    let ours = ca("D", 1);
    let theirs = ca("D", 2);
    let signed = list(1).sign(&theirs).unwrap();
    assert_eq!(
        RevocationList::verify(&signed, ours.cert()),
        Err(RevocationError::BadSignature)
    );
}

#[test]
fn size_limits_hold_before_decoding_and_when_signing() {
    let ca = ca("D", 1);
    let huge = vec![0x82; MAX_LIST_BYTES + 1];
    assert_eq!(
        RevocationList::verify(&huge, ca.cert()),
        Err(RevocationError::TooLarge {
            len: MAX_LIST_BYTES + 1,
            max: MAX_LIST_BYTES
        })
    );
    let mut too_many = list(1);
    too_many.revoked = (0..=MAX_REVOKED as u32)
        .map(|i| Revoked {
            key: AuthorId({
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_be_bytes());
                k
            }),
            last_valid_seq: 0,
            reason: String::new(),
        })
        .collect();
    assert!(matches!(
        too_many.sign(&ca),
        Err(RevocationError::TooManyEntries { .. })
    ));
    // Within the entry cap but over the byte cap.
    too_many.revoked.truncate(40_000);
    assert!(matches!(
        too_many.sign(&ca),
        Err(RevocationError::TooLarge { .. })
    ));
    let mut long_reason = list(1);
    long_reason.revoked[0].reason = "x".repeat(MAX_REASON_BYTES + 1);
    assert_eq!(
        long_reason.sign(&ca),
        Err(RevocationError::ReasonTooLong {
            len: MAX_REASON_BYTES + 1,
            max: MAX_REASON_BYTES
        })
    );
    let mut twice = list(1);
    twice.revoked.push(revoked(9, 5, "again"));
    assert_eq!(
        twice.sign(&ca),
        Err(RevocationError::DuplicateKey(AuthorId([9; 32])))
    );
}

/// A list signed by the CA key but encoded with a non-shortest head: the
/// signature verifies, the encoding is refused.
#[test]
fn a_non_canonical_encoding_is_refused_even_when_signed() {
    let ca = ca("D", 1);
    let mut payload = vec![0x84, 0x77];
    payload.extend_from_slice(b"sentinel-revocations-v1");
    payload.extend_from_slice(&[0x18, 0x01]); // number 1, in two bytes
    payload.extend_from_slice(&[0x00, 0x80]); // issued 0, no entries
    let sig = key(1).sign(&payload).to_bytes();
    let mut doc = vec![0x82, 0x58, payload.len() as u8];
    doc.extend_from_slice(&payload);
    doc.extend_from_slice(&[0x58, 0x40]);
    doc.extend_from_slice(&sig);
    assert_eq!(
        RevocationList::verify(&doc, ca.cert()),
        Err(RevocationError::NotCanonical)
    );
    // The same list, canonically encoded, is fine.
    payload.splice(25..27, [0x01]);
    let sig = key(1).sign(&payload).to_bytes();
    let mut doc = vec![0x82, 0x58, payload.len() as u8];
    doc.extend_from_slice(&payload);
    doc.extend_from_slice(&[0x58, 0x40]);
    doc.extend_from_slice(&sig);
    assert_eq!(RevocationList::verify(&doc, ca.cert()).unwrap().number, 1);
}

#[test]
fn the_handle_installs_only_newer_verified_lists() {
    let ca = ca("D", 1);
    let other = ca_other();
    let handle = RevocationHandle::empty();
    assert_eq!(*handle.current(), RevocationList::empty());
    assert!(handle.signed().is_none());

    let two = list(2).sign(&ca).unwrap();
    assert_eq!(handle.offer(&two, ca.cert()), Ok(Offered::Installed));
    assert_eq!(handle.current().number, 2);
    assert_eq!(handle.signed().as_deref(), Some(&two[..]));
    assert_eq!(
        handle
            .revocation_of(&AuthorId([2; 32]))
            .map(|r| r.last_valid_seq),
        Some(41)
    );

    let one = list(1).sign(&ca).unwrap();
    assert_eq!(handle.offer(&one, ca.cert()), Ok(Offered::NotNewer));
    assert_eq!(handle.offer(&two, ca.cert()), Ok(Offered::NotNewer));
    assert_eq!(
        handle.offer(&list(3).sign(&other).unwrap(), ca.cert()),
        Err(RevocationError::BadSignature)
    );
    assert_eq!(handle.current().number, 2);

    // Clones share the list.
    let clone = handle.clone();
    clone.offer(&list(3).sign(&ca).unwrap(), ca.cert()).unwrap();
    assert_eq!(handle.current().number, 3);

    let from = RevocationHandle::from_signed(&one, ca.cert()).unwrap();
    assert_eq!(from.current().number, 1);
}

fn ca_other() -> sentinel_certs::Ca {
    ca("D", 2)
}
