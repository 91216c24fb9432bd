//! The entry format: encoding, decoding limits, signatures and chains.

use crate::common::*;
use proptest::prelude::*;
use sentinel_schema::*;

fn reading(lon: f64, lat: f64, value: f64) -> Body {
    Body::SensorReading(SensorReading {
        kind: "water_gauge".into(),
        values: vec![ReadingValue {
            name: "level".into(),
            value,
            unit: "m".into(),
        }],
        location: Some(Point::new(lon, lat).unwrap()),
        measured_ms: 1_790_000_000_000,
    })
}

fn all_bodies() -> Vec<Body> {
    vec![
        event_change(7),
        Body::MediaAttached(MediaAttached {
            event: EventId([3; 16]),
            hash: [9; 32],
            mime: MediaType::Jpeg,
            size: 123_456,
            name: "scene.jpg".into(),
        }),
        reading(13.4, 52.5, 2.25),
        Body::RoleGrant(RoleGrant {
            person: "officer.ada".into(),
            role: PersonRole::Officer,
        }),
        Body::Revocation(Revocation {
            key: AuthorId([4; 32]),
            last_valid_seq: 17,
            reason: "device lost".into(),
        }),
        Body::HubCheckpoint(HubCheckpoint {
            heads: vec![
                (
                    AuthorId([1; 32]),
                    Head {
                        seq: 300,
                        id: EntryId([5; 32]),
                    },
                ),
                (
                    AuthorId([2; 32]),
                    Head {
                        seq: 1,
                        id: EntryId([6; 32]),
                    },
                ),
            ],
        }),
    ]
}

#[test]
fn every_body_kind_round_trips() {
    let k = key(1);
    for body in all_bodies() {
        let kind = body.kind();
        let signed = next_entry(&k, None, body).sign(&k).unwrap();
        let back = SignedEntry::from_bytes(signed.as_bytes().to_vec()).unwrap();
        assert_eq!(back.entry(), signed.entry(), "{kind:?}");
        assert_eq!(back.id(), signed.id());
        assert_eq!(back.id(), EntryId::of(signed.as_bytes()));
        back.verify().unwrap();
    }
}

#[test]
fn signing_refuses_entries_no_peer_would_accept() {
    let k = key(1);
    let mut e = next_entry(&k, None, event_change(1));
    e.actor = Some("x".repeat(limits::MAX_ACTOR_BYTES + 1));
    assert!(matches!(
        e.clone().sign(&k),
        Err(SignError::Invalid(DecodeError::OutOfRange {
            field: "actor",
            ..
        }))
    ));
    e.actor = None;
    assert_eq!(e.clone().sign(&key(2)).unwrap_err(), SignError::WrongKey);
    e.seq = 2; // seq 2 without prev
    assert!(matches!(
        e.clone().sign(&k),
        Err(SignError::Invalid(DecodeError::OutOfRange {
            field: "prev",
            ..
        }))
    ));
    e.seq = 1;
    e.body = Body::EventChange(EventChange {
        event: EventId([0; 16]),
        change: vec![0; limits::MAX_ENTRY_BYTES],
    });
    assert!(matches!(
        e.sign(&k),
        Err(SignError::Invalid(DecodeError::TooLarge { .. }))
    ));
    let bad_value = next_entry(&k, None, {
        let mut b = reading(0.0, 0.0, 1.0);
        if let Body::SensorReading(r) = &mut b {
            r.values[0].value = f64::NAN;
        }
        b
    });
    assert!(matches!(
        bad_value.sign(&k),
        Err(SignError::Invalid(DecodeError::OutOfRange {
            field: "value.value",
            ..
        }))
    ));
}

/// Replaces the entry bytes inside a signed entry and re-signs, to build
/// entries whose signature is fine but whose content breaks a rule.
fn resign(key: &SigningKey, entry_bytes: &[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let sig = key.sign(entry_bytes).to_bytes();
    let mut out = vec![0x82];
    cbor_bytes(&mut out, entry_bytes);
    cbor_bytes(&mut out, &sig);
    out
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0x58, n as u8]),
        n => {
            out.push(0x59);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

#[test]
fn decoding_refuses_each_kind_of_bad_input_with_its_reason() {
    let k = key(1);
    let good = next_entry(&k, None, event_change(1)).sign(&k).unwrap();
    let inner = good.signed_bytes().to_vec();
    let decode = |b: Vec<u8>| SignedEntry::from_bytes(b).map(|_| ()).unwrap_err();

    assert!(matches!(decode(vec![]), DecodeError::Truncated { at: 0 }));
    assert!(matches!(
        decode(vec![0; limits::MAX_ENTRY_BYTES + 1]),
        DecodeError::TooLarge { .. }
    ));
    let mut truncated = good.as_bytes().to_vec();
    truncated.pop();
    assert!(matches!(decode(truncated), DecodeError::Truncated { .. }));
    let mut trailing = good.as_bytes().to_vec();
    trailing.push(0);
    assert!(matches!(
        decode(trailing),
        DecodeError::TrailingBytes { .. }
    ));
    // A map instead of the outer array.
    assert!(matches!(decode(vec![0xa0]), DecodeError::Malformed { .. }));
    // Indefinite-length outer array.
    assert!(matches!(
        decode(vec![0x9f, 0xff]),
        DecodeError::Malformed { .. }
    ));
    // A byte string that claims 4 GiB.
    assert!(matches!(
        decode(vec![0x82, 0x5b, 0, 0, 0, 1, 0, 0, 0, 0]),
        DecodeError::OutOfRange { .. }
    ));
    assert!(matches!(
        decode(vec![0x82, 0x5a, 0, 0x10, 0, 0]),
        DecodeError::Truncated { .. }
    ));

    // Version 2 (byte 1 of the entry bytes is the version).
    let mut v2 = inner.clone();
    v2[1] = 0x02;
    assert_eq!(decode(resign(&k, &v2)), DecodeError::UnsupportedVersion(2));
    // Unknown body kind: the body is the last array; its kind follows the
    // event-change body head `0x83`.
    let body_at = inner.len() - (1 + 1 + 17 + 1 + 8);
    assert_eq!(inner[body_at], 0x83);
    assert_eq!(inner[body_at + 1], 0x01);
    let mut unknown = inner.clone();
    unknown[body_at + 1] = 0x09;
    assert_eq!(
        decode(resign(&k, &unknown)),
        DecodeError::UnknownBodyKind(9)
    );
    // seq written as a 2-byte integer where 1 byte suffices: same value,
    // other bytes, so it would be a second id for one entry.
    let author_end = 2 + 2 + 32;
    assert_eq!(inner[author_end], 0x01);
    let mut long_seq = inner[..author_end].to_vec();
    long_seq.extend_from_slice(&[0x19, 0x00, 0x01]);
    long_seq.extend_from_slice(&inner[author_end + 1..]);
    assert_eq!(decode(resign(&k, &long_seq)), DecodeError::NonCanonical);
    // The outer byte-string head in a longer form than needed.
    let mut long_head = vec![0x82, 0x59];
    long_head.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    long_head.extend_from_slice(&inner);
    cbor_bytes(&mut long_head, good.signature().to_bytes().as_slice());
    assert_eq!(decode(long_head), DecodeError::NonCanonical);
    // A signature of the wrong length.
    let mut short_sig = vec![0x82];
    cbor_bytes(&mut short_sig, &inner);
    cbor_bytes(&mut short_sig, &[0; 63]);
    assert!(matches!(
        decode(short_sig),
        DecodeError::OutOfRange {
            field: "signature",
            ..
        }
    ));
}

#[test]
fn nan_and_out_of_range_coordinates_are_refused() {
    let k = key(1);
    let good = next_entry(&k, None, reading(1.5, 2.5, 3.0))
        .sign(&k)
        .unwrap();
    let inner = good.signed_bytes();
    // Find the 8-byte float for longitude 1.5 and replace it.
    let lon = [[0xfb].as_slice(), &1.5f64.to_be_bytes()].concat();
    let at = inner.windows(9).position(|w| w == lon.as_slice()).unwrap();
    for bad in [f64::NAN, f64::INFINITY, 180.000001, -181.0] {
        let mut b = inner.to_vec();
        b[at + 1..at + 9].copy_from_slice(&bad.to_be_bytes());
        let err = SignedEntry::from_bytes(resign(&k, &b)).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::OutOfRange {
                    field: "location",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn flipped_signature_is_refused_single_and_batched() {
    let k = key(3);
    let mut entries = chain(&k, 300);
    let mut b = entries[123].as_bytes().to_vec();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    entries[123] = SignedEntry::from_bytes(b).unwrap();
    assert_eq!(
        entries[123].verify(),
        Err(VerifyError::BadSignature {
            author: author_of(&k),
            seq: 124
        })
    );
    let verdicts = verify_signatures(&entries);
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v.is_err(), i == 123, "entry {i}");
    }
    let (good, bad) = verify_all(entries);
    assert_eq!((good.len(), bad.len()), (299, 1));
    assert_eq!(bad[0].entry.seq(), 124);
}

#[test]
fn small_order_keys_and_r_are_refused_by_both_paths() {
    // The identity point as author key, and a signature whose R is the
    // identity and S is 0: the batch equation alone would accept it.
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    let author = AuthorId(identity);
    let entry = Entry {
        author,
        seq: 1,
        prev: None,
        hlc: Hlc::new(1, 0),
        actor: None,
        body: event_change(1),
    };
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    let bytes = {
        let mut out = vec![0x82];
        cbor_bytes(&mut out, &entry.encode());
        cbor_bytes(&mut out, &sig);
        out
    };
    let e = SignedEntry::from_bytes(bytes).unwrap();
    assert_eq!(e.verify(), Err(VerifyError::BadAuthorKey(author)));
    let many = vec![e; 8];
    let verdicts = verify_signatures(&many);
    assert_eq!(verdicts.len(), 8, "one verdict per entry");
    assert!(verdicts
        .iter()
        .all(|v| *v == Err(VerifyError::BadAuthorKey(author))));

    // A real key, with R the identity and S = 0: refused as a bad
    // signature by both paths.
    let k = key(9);
    let real = next_entry(&k, None, event_change(2)).sign(&k).unwrap();
    let mut forged = vec![0x82];
    cbor_bytes(&mut forged, real.signed_bytes());
    cbor_bytes(&mut forged, &sig);
    let forged = SignedEntry::from_bytes(forged).unwrap();
    assert!(matches!(
        forged.verify(),
        Err(VerifyError::BadSignature { .. })
    ));
    let mut batch = chain(&k, 7);
    batch.push(forged);
    let verdicts = verify_signatures(&batch);
    assert!(verdicts[..7].iter().all(Result::is_ok));
    assert!(matches!(verdicts[7], Err(VerifyError::BadSignature { .. })));
}

fn fault_at(entries: &[SignedEntry], author: AuthorId) -> (usize, ChainFault) {
    let e = verify_chain(author, entries).unwrap_err();
    (e.index, e.fault)
}

#[test]
fn chain_verification_names_the_first_bad_entry() {
    let k = key(5);
    let a = author_of(&k);
    let good = chain(&k, 10);
    let head = verify_chain(a, &good).unwrap().unwrap();
    assert_eq!((head.seq, head.id), (10, good[9].id()));
    assert_eq!(verify_chain(a, &[]).unwrap(), None);

    // Gap: drop seq 4.
    let mut gap = good.clone();
    gap.remove(3);
    assert_eq!(
        fault_at(&gap, a),
        (
            3,
            ChainFault::Gap {
                expected: 4,
                found: 5
            }
        )
    );

    // Not starting at 1.
    assert_eq!(
        fault_at(&good[2..], a),
        (0, ChainFault::NotStartingAtOne(3))
    );

    // Wrong prev: a seq-5 entry signed by the author but pointing elsewhere.
    let mut wrong = good[..4].to_vec();
    let mut e = next_entry(&k, Some(&good[3]), event_change(99));
    e.prev = Some(good[1].id());
    wrong.push(e.sign(&k).unwrap());
    assert_eq!(
        fault_at(&wrong, a),
        (
            4,
            ChainFault::WrongPrev {
                expected: good[3].id()
            }
        )
    );

    // Fork: a second, different seq 3.
    let mut fork = good[..5].to_vec();
    let alt = next_entry(&k, Some(&good[1]), event_change(200))
        .sign(&k)
        .unwrap();
    fork.push(alt);
    assert_eq!(
        fault_at(&fork, a),
        (
            5,
            ChainFault::Fork {
                other: good[2].id()
            }
        )
    );

    // Duplicate.
    let mut dup = good[..5].to_vec();
    dup.push(good[2].clone());
    assert_eq!(fault_at(&dup, a), (5, ChainFault::Duplicate));

    // Swapped entries.
    let mut swapped = good.clone();
    swapped.swap(6, 7);
    assert_eq!(
        fault_at(&swapped, a),
        (
            6,
            ChainFault::Gap {
                expected: 7,
                found: 8
            }
        )
    );

    // Another author's entry inside the chain.
    let mut mixed = good[..3].to_vec();
    mixed.push(chain(&key(6), 4)[3].clone());
    assert_eq!(fault_at(&mixed, a), (3, ChainFault::WrongAuthor));

    // A bad signature is reported before a later link fault.
    let mut sig = gap.clone();
    let mut b = sig[1].as_bytes().to_vec();
    let n = b.len();
    b[n - 5] ^= 0x80;
    sig[1] = SignedEntry::from_bytes(b).unwrap();
    assert_eq!(fault_at(&sig, a), (1, ChainFault::BadSignature));
}

#[test]
fn check_link_tells_next_from_already_held() {
    let k = key(5);
    let c = chain(&k, 3);
    let tip = Some(Head {
        seq: 2,
        id: c[1].id(),
    });
    assert_eq!(check_link(None, &c[0]), Ok(Link::Next));
    assert_eq!(check_link(tip, &c[2]), Ok(Link::Next));
    assert_eq!(check_link(tip, &c[1]), Ok(Link::AlreadyHeld));
    assert_eq!(check_link(tip, &c[0]), Ok(Link::AlreadyHeld));
    assert_eq!(
        check_link(None, &c[1]),
        Err(ChainFault::NotStartingAtOne(2))
    );
}

fn arb_text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{1,{}}}", max.min(40)))
        .unwrap()
        .prop_filter("byte cap", move |s| s.len() <= max)
}

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            prop::collection::vec(any::<u8>(), 1..300)
        )
            .prop_map(|(e, c)| {
                Body::EventChange(EventChange {
                    event: EventId(e),
                    change: c,
                })
            }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            0usize..4,
            1u64..1_000_000,
            arb_text(255)
        )
            .prop_map(|(e, h, m, size, name)| Body::MediaAttached(MediaAttached {
                event: EventId(e),
                hash: h,
                mime: MediaType::ALL[m],
                size,
                name,
            })),
        (
            arb_text(64),
            prop::collection::vec((arb_text(64), -1e9f64..1e9, arb_text(32)), 1..5),
            prop::option::of((-180f64..=180.0, -90f64..=90.0)),
            any::<u64>()
        )
            .prop_map(|(kind, values, loc, t)| Body::SensorReading(SensorReading {
                kind,
                values: values
                    .into_iter()
                    .map(|(name, value, unit)| ReadingValue { name, value, unit })
                    .collect(),
                location: loc.map(|(x, y)| Point::new(x, y).unwrap()),
                measured_ms: t,
            })),
        (arb_text(128), 0usize..4).prop_map(|(person, r)| Body::RoleGrant(RoleGrant {
            person,
            role: [
                PersonRole::None,
                PersonRole::Public,
                PersonRole::Officer,
                PersonRole::Admin
            ][r],
        })),
        (any::<[u8; 32]>(), any::<u64>(), arb_text(256)).prop_map(|(k, s, reason)| {
            Body::Revocation(Revocation {
                key: AuthorId(k),
                last_valid_seq: s,
                reason,
            })
        }),
        proptest::collection::btree_map(any::<[u8; 32]>(), (1..u64::MAX, any::<[u8; 32]>()), 1..8)
            .prop_map(|heads| {
                Body::HubCheckpoint(HubCheckpoint {
                    heads: heads
                        .into_iter()
                        .map(|(a, (seq, id))| {
                            (
                                AuthorId(a),
                                Head {
                                    seq,
                                    id: EntryId(id),
                                },
                            )
                        })
                        .collect(),
                })
            }),
    ]
}

fn arb_entry() -> impl Strategy<Value = (u8, Entry)> {
    (
        1u8..=255,
        1u64..u64::MAX,
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u32>(),
        prop::option::of(arb_text(128)),
        arb_body(),
    )
        .prop_map(|(k, seq, prev, ms, c, actor, body)| {
            let key = key(k);
            (
                k,
                Entry {
                    author: author_of(&key),
                    seq,
                    prev: (seq > 1).then_some(EntryId(prev)),
                    hlc: Hlc::new(ms, c),
                    actor,
                    body,
                },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn encode_decode_round_trip((k, entry) in arb_entry()) {
        let signed = entry.clone().sign(&key(k)).unwrap();
        let back = SignedEntry::from_bytes(signed.as_bytes().to_vec()).unwrap();
        prop_assert_eq!(back.entry(), &entry);
        prop_assert_eq!(back.as_bytes(), signed.as_bytes());
        prop_assert!(back.verify().is_ok());
    }

    #[test]
    fn flipping_any_byte_breaks_verification(
        (k, entry) in arb_entry(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let signed = entry.sign(&key(k)).unwrap();
        let mut b = signed.as_bytes().to_vec();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        match SignedEntry::from_bytes(b) {
            Err(_) => {}
            Ok(e) => prop_assert!(e.verify().is_err(), "flip at {} of {} verified", i, signed.as_bytes().len()),
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(b in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedEntry::from_bytes(b.clone());
        let _ = cbor::check_well_formed(&b, cbor::WellFormedLimits::default());
    }
}

#[test]
fn checkpoint_heads_must_be_ascending_nonempty_and_start_at_seq_1() {
    let head = |a: u8, seq: u64| {
        (
            AuthorId([a; 32]),
            Head {
                seq,
                id: EntryId([a; 32]),
            },
        )
    };
    let cp = |heads| Body::HubCheckpoint(HubCheckpoint { heads });
    assert!(cp(vec![head(1, 1), head(2, 9)]).validate().is_ok());
    let refused = |body: Body, field: &str| {
        let err = body.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    };
    refused(cp(vec![]), "checkpoint.heads");
    refused(cp(vec![head(2, 1), head(1, 1)]), "checkpoint.heads");
    refused(cp(vec![head(1, 1), head(1, 2)]), "checkpoint.heads");
    refused(cp(vec![head(1, 0)]), "head.seq");
    let too_many = (0..=sentinel_schema::limits::MAX_CHECKPOINT_HEADS as u32)
        .map(|i| {
            let mut a = [0u8; 32];
            a[..4].copy_from_slice(&i.to_be_bytes());
            (
                AuthorId(a),
                Head {
                    seq: 1,
                    id: EntryId([7; 32]),
                },
            )
        })
        .collect();
    refused(cp(too_many), "checkpoint.heads");
}
