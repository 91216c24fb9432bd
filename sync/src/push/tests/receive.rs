//! Whole pushes through `receive`: what is stored, what is refused and
//! that a refusal changes nothing.

use super::*;

#[test]
fn a_batch_with_its_certificate_is_stored_whole() {
    let mut w = world();
    let entries = w.readings(3);
    let cert = w.cert.clone();
    let accepted = w.push(&encode(Some(&cert), &entries)).unwrap();
    assert_eq!(accepted.report.n_stored, 3);
    assert_eq!(accepted.report.n_duplicates, 0);
    assert_eq!(
        outcomes(&accepted.report),
        vec![
            (1, Outcome::Stored),
            (2, Outcome::Stored),
            (3, Outcome::Stored)
        ]
    );
    assert_eq!(accepted.stored, entries);
    assert_eq!(accepted.max_hlc, Some(entries[2].entry().hlc));
    assert!(accepted.certificate_stored);
    assert_eq!(w.store.log(&author_of(&w.sensor)), entries.as_slice());
    assert_eq!(
        w.store.certificate(&author_of(&w.sensor)).unwrap(),
        Some(w.cert.clone())
    );
}

#[test]
fn a_bare_entry_is_one_entry_once_the_certificate_is_held() {
    let mut w = world();
    let entries = w.readings(2);
    // Unknown yet: refused, nothing stored.
    w.refuse(entries[0].as_bytes(), "unknown_author", Some(0));
    w.accept(&entries[..1]);
    let accepted = w.push(entries[1].as_bytes()).unwrap();
    assert_eq!(outcomes(&accepted.report), vec![(2, Outcome::Stored)]);
    assert!(!accepted.certificate_stored);
    // The bare form decodes to exactly the entry's bytes.
    let push = decode(entries[1].as_bytes()).unwrap();
    assert_eq!(push.certificate, None);
    assert_eq!(push.entries, vec![entries[1].as_bytes().to_vec()]);
    // And the batch form without a certificate works the same.
    let again = w.push(&encode(None, &entries)).unwrap();
    assert_eq!(again.report.n_duplicates, 2);
}

#[test]
fn replays_are_idempotent() {
    let mut w = world();
    let entries = w.readings(4);
    w.accept(&entries[..3]);
    let replay = w.accept(&entries[..3]);
    assert_eq!((replay.n_stored, replay.n_duplicates), (0, 3));
    // Overlapping: the held ones are duplicates, the next one is stored.
    let overlap = w.accept(&entries[1..]);
    assert_eq!(
        outcomes(&overlap),
        vec![
            (2, Outcome::Duplicate),
            (3, Outcome::Duplicate),
            (4, Outcome::Stored)
        ]
    );
    assert_eq!(w.store.log(&author_of(&w.sensor)).len(), 4);
    assert_eq!(w.store.forks().len(), 0);
    // A bare replay too.
    let bare = w.push(entries[0].as_bytes()).unwrap();
    assert_eq!(outcomes(&bare.report), vec![(1, Outcome::Duplicate)]);
}

#[test]
fn a_forged_signature_refuses_the_whole_push() {
    let mut w = world();
    let entries = w.readings(3);
    let mut forged = entries[1].as_bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut body = Writer::default();
    body.array(2);
    body.bytes(&w.cert);
    body.array(3);
    for e in [entries[0].as_bytes(), &forged, entries[2].as_bytes()] {
        body.bytes(e);
    }
    w.refuse(&body.out, "bad_signature", Some(1));
    // Signed by another key in the sensor's name.
    let entry = entries[0].entry().encode();
    let impostor = sign_raw(&key(99), &entry);
    let mut body = Writer::default();
    body.array(2);
    body.bytes(&w.cert);
    body.array(1);
    body.bytes(&impostor);
    w.refuse(&body.out, "bad_signature", Some(0));
    assert_eq!(w.store.n_entries(), 0);
}

#[test]
fn a_fork_is_kept_as_evidence_and_refused() {
    let mut w = world();
    let entries = w.readings(3);
    w.accept(&entries);
    // Another history from seq 2: [1 (held), 2', 3'].
    let other2 = sign_after(
        &w.sensor,
        Some(&entries[0]),
        1_790_000_000_001,
        reading_at(1_790_000_000_001, 9.99),
    );
    let other3 = sign_after(&w.sensor, Some(&other2), 1_790_000_000_002, reading(2));
    let push = encode(None, &[entries[0].clone(), other2.clone(), other3]);
    let err = w.push(&push).unwrap_err();
    assert_eq!(
        (err.code(), err.index(), err.status()),
        ("fork", Some(1), 409)
    );
    assert!(err.is_fork());
    assert!(matches!(err, PushError::Refused { seq: 2, .. }));
    assert_eq!(
        err.refusal(),
        Some(&PushRefusal::Chain(ChainFault::Fork {
            other: entries[1].id()
        }))
    );
    // The evidence is kept; the log is the first history, untouched.
    assert_eq!(w.store.forks().len(), 1);
    assert_eq!(w.store.forks()[0].entry, other2);
    assert_eq!(w.store.forks()[0].held, entries[1].id());
    assert_eq!(w.store.log(&author_of(&w.sensor)), entries.as_slice());
    // Sending the fork again records nothing new.
    let again = w.push(&encode(None, &[other2])).unwrap_err();
    assert!(again.is_fork());
    assert_eq!(w.store.forks().len(), 1);
}

#[test]
fn unknown_keys_and_bad_certificates_are_refused() {
    let mut w = world();
    let stranger = key(71);
    let entries = chain(&stranger, 2, reading);
    w.refuse(&encode(None, &entries), "unknown_author", Some(0));
    // A certificate from another CA.
    let rogue = TestCa::new(8).certificate(author_of(&stranger), DeviceRole::Sensor);
    w.refuse(&encode(Some(&rogue), &entries), "bad_certificate", None);
    // The sensor's own (good) certificate on the stranger's entries.
    let cert = w.cert.clone();
    w.refuse(&encode(Some(&cert), &entries), "bad_certificate", None);
    // Not a certificate at all.
    w.refuse(&encode(Some(b"junk"), &entries), "bad_certificate", None);
    // A certificate whose validity does not cover the entries' HLC time.
    let expired =
        w.ca.certificate_valid(author_of(&stranger), DeviceRole::Sensor, 0, 1_000);
    w.refuse(
        &encode(Some(&expired), &entries),
        "certificate_not_valid",
        Some(0),
    );
}

#[test]
fn revoked_keys_are_refused_from_the_first_revoked_seq() {
    let mut w = world();
    let entries = w.readings(3);
    w.revocations = Revocations {
        number: 1,
        revoked: [(author_of(&w.sensor), 1)].into_iter().collect(),
    };
    let cert = w.cert.clone();
    // Seq 1 is still valid, seq 2 is not: the whole push is refused.
    w.refuse(&encode(Some(&cert), &entries), "revoked", Some(1));
    w.accept(&entries[..1]);
    w.revocations.revoked.insert(author_of(&w.sensor), 0);
    w.refuse(&encode(Some(&cert), &entries[1..]), "revoked", Some(0));
    let err = w.push(&encode(None, &entries[1..])).unwrap_err();
    assert_eq!(err.status(), 403);
}

#[test]
fn only_sensors_push_and_only_readings() {
    let mut w = world();
    // A node's certificate with readings: a node may not write them.
    let node = key(72);
    let node_cert = w.ca.certificate(author_of(&node), DeviceRole::Node);
    let readings = chain(&node, 1, reading);
    w.refuse(
        &encode(Some(&node_cert), &readings),
        "role_not_allowed",
        Some(0),
    );
    // A node with what it may write: still not a sensor.
    let media_entries = chain(&node, 1, |n| media(n, 8));
    let err = w
        .push(&encode(Some(&node_cert), &media_entries))
        .unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&PushRefusal::NotASensor(DeviceRole::Node))
    );
    // A hub, likewise.
    let hub_cert = w.ca.certificate(author_of(&node), DeviceRole::Hub);
    w.refuse(
        &encode(Some(&hub_cert), &media_entries),
        "role_not_allowed",
        Some(0),
    );
    // A sensor writing something else than a reading.
    let sensor_media = chain(&w.sensor, 2, |n| {
        if n == 0 {
            reading(n)
        } else {
            Body::MediaAttached(MediaAttached {
                event: sentinel_schema::EventId([1; 16]),
                hash: [2; 32],
                mime: MediaType::Png,
                size: 10,
                name: "x.png".into(),
            })
        }
    });
    let cert = w.cert.clone();
    w.refuse(
        &encode(Some(&cert), &sensor_media),
        "role_not_allowed",
        Some(1),
    );
}

#[test]
fn oversized_and_malformed_bodies_are_refused() {
    let mut w = world();
    let too_big = vec![0u8; MAX_PUSH_BYTES + 1];
    w.refuse(&too_big, "too_large", None);
    assert_eq!(w.push(&too_big).unwrap_err().status(), 413);
    let entries = w.readings(2);
    let good = encode(Some(&w.cert), &entries);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "malformed"),
        ("garbage", b"hello sensor".to_vec(), "malformed"),
        ("truncated", good[..good.len() - 1].to_vec(), "malformed"),
        ("trailing", [good.as_slice(), &[0]].concat(), "malformed"),
        ("a map", vec![0xa1, 0x01, 0x02], "malformed"),
        ("no entries", vec![0x82, 0xf6, 0x80], "malformed"),
        ("three items", vec![0x83, 0xf6, 0x80, 0x80], "malformed"),
        (
            "entries not an array",
            vec![0x82, 0xf6, 0x41, 0x00],
            "malformed",
        ),
        ("certificate a number", vec![0x82, 0x01, 0x80], "malformed"),
        (
            "indefinite array",
            vec![0x9f, 0xf6, 0x80, 0xff],
            "malformed",
        ),
        // 1 written as 0x1801: not the shortest head.
        (
            "non-canonical head",
            vec![0x98, 0x02, 0xf6, 0x80],
            "malformed",
        ),
    ];
    for (name, bytes, code) in cases {
        let err = w.push(&bytes).unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err}");
        assert_eq!(err.status(), 400, "{name}");
    }
    // Too many entries.
    let mut many = Writer::default();
    many.array(2);
    many.null();
    many.array(MAX_PUSH_ENTRIES + 1);
    for _ in 0..=MAX_PUSH_ENTRIES {
        many.bytes(&[0]);
    }
    let err = decode(&many.out).unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::OutOfRange {
                field: "entries",
                ..
            }
        ),
        "{err}"
    );
    // An entry that is not a signed entry: named by its index.
    let mut bad = Writer::default();
    bad.array(2);
    bad.null();
    bad.array(2);
    bad.bytes(entries[0].as_bytes());
    bad.bytes(b"not an entry");
    w.refuse(&bad.out, "bad_entry", Some(1));
    // A certificate over the certificate limit.
    let mut huge = Writer::default();
    huge.array(2);
    huge.bytes(&vec![0x30; crate::message::MAX_CERTIFICATE_BYTES + 1]);
    huge.array(1);
    huge.bytes(entries[0].as_bytes());
    assert!(matches!(
        decode(&huge.out),
        Err(MessageError::OutOfRange {
            field: "certificate",
            ..
        })
    ));
    assert_eq!(w.store.n_entries(), 0);
}

#[test]
fn nan_values_do_not_decode() {
    let mut w = world();
    let entry = Entry {
        author: author_of(&w.sensor),
        seq: 1,
        prev: None,
        hlc: Hlc::new(1_790_000_000_000, 0),
        actor: None,
        body: reading_at(1_790_000_000_000, 0.5),
    };
    let mut bytes = entry.encode();
    let half = [&[0xfb][..], &0.5f64.to_be_bytes()].concat();
    let at = bytes
        .windows(9)
        .position(|win| win == half.as_slice())
        .unwrap();
    bytes[at + 1..at + 9].copy_from_slice(&f64::NAN.to_be_bytes());
    let signed = sign_raw(&w.sensor, &bytes);
    let mut body = Writer::default();
    body.array(2);
    body.bytes(&w.cert);
    body.array(1);
    body.bytes(&signed);
    w.refuse(&body.out, "bad_entry", Some(0));
    assert!(matches!(
        w.push(&body.out),
        Err(PushError::BadEntry {
            error: DecodeError::OutOfRange {
                field: "value.value",
                ..
            },
            ..
        })
    ));
    // Bare, too.
    w.refuse(&signed, "bad_entry", Some(0));
}

#[test]
fn measurements_and_clocks_far_in_the_future_are_refused() {
    let mut w = world();
    let cert = w.cert.clone();
    let limit = NOW + MAX_FUTURE_MS;
    let late = sign_after(&w.sensor, None, NOW, reading_at(limit + 1, 1.0));
    w.refuse(&encode(Some(&cert), &[late]), "future_measurement", Some(0));
    let ahead = sign_after(&w.sensor, None, limit + 1, reading_at(NOW, 1.0));
    w.refuse(&encode(Some(&cert), &[ahead]), "future_clock", Some(0));
    // The last of a batch is in the future: nothing of it is stored.
    let mut entries = w.readings(4);
    entries.push(sign_after(
        &w.sensor,
        entries.last(),
        NOW,
        reading_at(u64::MAX, 1.0),
    ));
    w.refuse(
        &encode(Some(&cert), &entries),
        "future_measurement",
        Some(4),
    );
    assert_eq!(
        w.push(&encode(Some(&cert), &entries)).unwrap_err().status(),
        422
    );
    // Exactly at the limit is fine.
    let edge = sign_after(&w.sensor, None, limit, reading_at(limit, 1.0));
    w.accept(&[edge]);
}

#[test]
fn gaps_and_disorder_are_refused() {
    let mut w = world();
    let entries = w.readings(5);
    let cert = w.cert.clone();
    // The store holds nothing: seq 2 cannot start a chain.
    w.refuse(
        &encode(Some(&cert), &entries[1..2]),
        "not_starting_at_one",
        Some(0),
    );
    w.accept(&entries[..3]);
    // Seq 5 when the store holds 3: the answer says where to resume.
    w.refuse(&encode(None, &entries[4..]), "gap", Some(0));
    assert!(matches!(
        w.push(&encode(None, &entries[4..])),
        Err(PushError::Refused { head_seq: 3, .. })
    ));
    // Within a push: not ascending by one.
    let reordered = [entries[3].clone(), entries[2].clone()];
    w.refuse(&encode(None, &reordered), "out_of_order", Some(1));
    let skipping = [entries[2].clone(), entries[4].clone()];
    w.refuse(&encode(None, &skipping), "out_of_order", Some(1));
    let twice = [entries[3].clone(), entries[3].clone()];
    w.refuse(&encode(None, &twice), "out_of_order", Some(1));
    // Seq 4 whose prev is not seq 3.
    let wrong_prev = sign_after(&w.sensor, Some(&entries[1]), 1_790_000_000_010, reading(7));
    let wrong_prev = Entry {
        seq: 4,
        ..wrong_prev.entry().clone()
    }
    .sign(&w.sensor)
    .unwrap();
    w.refuse(&encode(None, &[wrong_prev]), "wrong_prev", Some(0));
    // A push of two authors.
    let other = chain(&key(71), 1, reading);
    let mixed = [entries[3].clone(), other[0].clone()];
    w.refuse(&encode(None, &mixed), "mixed_authors", Some(1));
    assert_eq!(w.store.log(&author_of(&w.sensor)).len(), 3);
}
