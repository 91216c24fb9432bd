//! The test vectors in `docs/vectors/entries.json`.
//!
//! Two checks: the file matches what the code generates today (so a format
//! change cannot slip past the document: regenerate with
//! `SENTINEL_REGEN_VECTORS=1 cargo test -p sentinel-schema --test
//! integration vectors` and review the diff), and every vector *read from
//! the file* gets exactly its expected verdict, the way an implementer in
//! another language would use it.

use crate::common::*;
use ed25519_dalek::Signer;
use sentinel_schema::redact::value_hash;
use sentinel_schema::*;
use serde_json::{json, Value};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/entries.json");

fn body_json(b: &Body) -> Value {
    match b {
        Body::EventChange(c) => json!({
            "kind": "event_change", "event": c.event.to_hex(), "change": hex::encode(&c.change)
        }),
        Body::MediaAttached(m) => json!({
            "kind": "media_attached", "event": m.event.to_hex(), "hash": hex::encode(m.hash),
            "mime": m.mime.as_mime(), "size": m.size, "name": m.name
        }),
        Body::SensorReading(r) => json!({
            "kind": "sensor_reading", "reading_kind": r.kind,
            "values": r.values.iter().map(|v| json!({"name": v.name, "value": v.value, "unit": v.unit})).collect::<Vec<_>>(),
            "location": r.location.map(|p| json!([p.lon(), p.lat()])),
            "measured_ms": r.measured_ms
        }),
        Body::RoleGrant(g) => {
            json!({"kind": "role_grant", "person": g.person, "role": g.role as u8})
        }
        Body::Revocation(r) => json!({
            "kind": "revocation", "key": r.key.to_hex(), "last_valid_seq": r.last_valid_seq, "reason": r.reason
        }),
        Body::HubCheckpoint(c) => json!({
            "kind": "hub_checkpoint",
            "heads": c.heads.iter().map(|(a, h)| json!({
                "author": a.to_hex(), "seq": h.seq, "id": h.id.to_hex()
            })).collect::<Vec<_>>()
        }),
        Body::Redaction(r) => json!({
            "kind": "redaction", "event": r.event.to_hex(),
            "values": r.values.iter().map(|v| json!({
                "field": v.field.as_str(), "hash": hex::encode(v.hash)
            })).collect::<Vec<_>>(),
            "blobs": r.blobs.iter().map(hex::encode).collect::<Vec<_>>(),
            "reason": r.reason
        }),
    }
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "author": e.author.to_hex(),
        "seq": e.seq,
        "prev": e.prev.map(|p| p.to_hex()),
        "hlc": [e.hlc.wall_ms, e.hlc.counter],
        "actor": e.actor,
        "body": body_json(&e.body),
    })
}

fn valid(name: &str, key_name: &str, s: &SignedEntry) -> Value {
    json!({
        "name": name,
        "key": key_name,
        "hex": hex::encode(s.as_bytes()),
        "signed_hex": hex::encode(s.signed_bytes()),
        "id": s.id().to_hex(),
        "fields": entry_json(s.entry()),
        "verdict": "valid",
    })
}

fn invalid(name: &str, note: &str, bytes: &[u8], verdict: &str) -> Value {
    json!({"name": name, "note": note, "hex": hex::encode(bytes), "verdict": verdict})
}

/// Re-signs replacement entry bytes, so the signature is good and only the
/// content is at fault.
fn resigned(key: &SigningKey, entry_bytes: &[u8]) -> Vec<u8> {
    let sig = key.sign(entry_bytes).to_bytes();
    let mut out = vec![0x82];
    push_bstr(&mut out, entry_bytes);
    push_bstr(&mut out, &sig);
    out
}

fn push_bstr(out: &mut Vec<u8>, b: &[u8]) {
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

fn generate() -> Value {
    let alice = key(1);
    let bob = key(2);
    let keys = json!([
        {"name": "alice", "seed": hex::encode([1u8; 32]), "public": author_of(&alice).to_hex()},
        {"name": "bob", "seed": hex::encode([2u8; 32]), "public": author_of(&bob).to_hex()},
    ]);

    // Alice's chain: one entry of every body kind, seq 1..=7.
    let bodies = vec![
        Body::EventChange(EventChange {
            event: EventId([0x11; 16]),
            change: b"automerge change bytes".to_vec(),
        }),
        Body::MediaAttached(MediaAttached {
            event: EventId([0x11; 16]),
            hash: [0xaa; 32],
            mime: MediaType::Jpeg,
            size: 48213,
            name: "flood-north-bridge.jpg".into(),
        }),
        Body::SensorReading(SensorReading {
            kind: "water_gauge".into(),
            values: vec![
                ReadingValue {
                    name: "level".into(),
                    value: 3.75,
                    unit: "m".into(),
                },
                ReadingValue {
                    name: "battery".into(),
                    value: 0.82,
                    unit: "".into(),
                },
            ],
            location: Some(Point::new(13.404954, 52.520008).unwrap()),
            measured_ms: 1_795_000_000_000,
        }),
        Body::RoleGrant(RoleGrant {
            person: "officer.ada".into(),
            role: PersonRole::Officer,
        }),
        Body::Revocation(Revocation {
            key: author_of(&bob),
            last_valid_seq: 2,
            reason: "device lost".into(),
        }),
        Body::HubCheckpoint(HubCheckpoint {
            heads: {
                // Two authors in ascending byte order, as the format demands.
                let mut heads = vec![
                    (
                        author_of(&alice),
                        Head {
                            seq: 5,
                            id: EntryId([0x55; 32]),
                        },
                    ),
                    (
                        author_of(&bob),
                        Head {
                            seq: 2,
                            id: EntryId([0x22; 32]),
                        },
                    ),
                ];
                heads.sort_by_key(|(a, _)| *a);
                heads
            },
        }),
        Body::Redaction(Redaction {
            event: EventId([0x11; 16]),
            values: vec![RedactedValue {
                field: RedactedField::Title,
                hash: value_hash(RedactedField::Title, "Ada Lovelace hurt at 12 Mill Lane"),
            }],
            blobs: vec![[0xaa; 32]],
            reason: "erasure request 2026-114".into(),
        }),
    ];
    let mut chain_a: Vec<SignedEntry> = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let mut e = next_entry(&alice, chain_a.last(), body);
        e.hlc = Hlc::new(1_795_000_000_000 + i as u64, i as u32 % 2);
        if i % 2 == 1 {
            e.actor = None;
        }
        chain_a.push(e.sign(&alice).unwrap());
    }
    let chain_b = chain(&bob, 3);

    let mut entries: Vec<Value> = Vec::new();
    for (i, s) in chain_a.iter().enumerate() {
        entries.push(valid(&format!("alice-{}", i + 1), "alice", s));
    }
    for (i, s) in chain_b.iter().enumerate() {
        entries.push(valid(&format!("bob-{}", i + 1), "bob", s));
    }
    // Entries that are well-formed and correctly signed, but break a chain.
    let wrong_prev = {
        let mut e = next_entry(&bob, Some(&chain_b[2]), event_change(4));
        e.prev = Some(chain_b[0].id());
        e.sign(&bob).unwrap()
    };
    entries.push(valid("bob-4-wrong-prev", "bob", &wrong_prev));
    let fork = next_entry(&bob, Some(&chain_b[1]), event_change(0x77))
        .sign(&bob)
        .unwrap();
    entries.push(valid("bob-3-fork", "bob", &fork));

    // Invalid entries, each refused for one reason.
    let base = &chain_a[0];
    let mut flipped = base.as_bytes().to_vec();
    let n = flipped.len();
    flipped[n - 1] ^= 0x01;
    entries.push(invalid(
        "flipped-signature-byte",
        "alice-1 with the last signature byte flipped",
        &flipped,
        "bad_signature",
    ));
    let mut flipped_body = base.as_bytes().to_vec();
    flipped_body[n - 70] ^= 0x01;
    entries.push(invalid(
        "flipped-content-byte",
        "alice-1 with a byte of the change flipped",
        &flipped_body,
        "bad_signature",
    ));

    let reading = &chain_a[2];
    let lon = [[0xfbu8].as_slice(), &13.404954f64.to_be_bytes()].concat();
    let at = reading
        .signed_bytes()
        .windows(9)
        .position(|w| w == lon.as_slice())
        .unwrap();
    let mut nan = reading.signed_bytes().to_vec();
    nan[at + 1..at + 9].copy_from_slice(&f64::NAN.to_be_bytes());
    entries.push(invalid(
        "nan-coordinate",
        "alice-3 with longitude NaN, correctly signed",
        &resigned(&alice, &nan),
        "out_of_range",
    ));
    let mut far = reading.signed_bytes().to_vec();
    far[at + 1..at + 9].copy_from_slice(&181.0f64.to_be_bytes());
    entries.push(invalid(
        "longitude-181",
        "alice-3 with longitude 181, correctly signed",
        &resigned(&alice, &far),
        "out_of_range",
    ));
    let mut nan_value = reading.signed_bytes().to_vec();
    let level = [[0xfbu8].as_slice(), &3.75f64.to_be_bytes()].concat();
    let at = nan_value
        .windows(9)
        .position(|w| w == level.as_slice())
        .unwrap();
    nan_value[at + 1..at + 9].copy_from_slice(&f64::NAN.to_be_bytes());
    entries.push(invalid(
        "nan-value",
        "alice-3 with the level value NaN, correctly signed",
        &resigned(&alice, &nan_value),
        "out_of_range",
    ));

    let inner = base.signed_bytes();
    let body_at = inner.len() - (1 + 1 + 17 + 1 + b"automerge change bytes".len());
    assert_eq!(&inner[body_at..body_at + 2], &[0x83, 0x01]);
    let mut unknown = inner.to_vec();
    unknown[body_at + 1] = 0x17;
    entries.push(invalid(
        "unknown-body-kind",
        "alice-1 with body kind 23, correctly signed",
        &resigned(&alice, &unknown),
        "unknown_body_kind",
    ));
    let mut v2 = inner.to_vec();
    v2[1] = 0x02;
    entries.push(invalid(
        "version-2",
        "alice-1 claiming format version 2, correctly signed",
        &resigned(&alice, &v2),
        "unsupported_version",
    ));
    let mut long_seq = inner[..36].to_vec();
    long_seq.extend_from_slice(&[0x19, 0x00, 0x01]);
    long_seq.extend_from_slice(&inner[37..]);
    entries.push(invalid(
        "non-minimal-seq",
        "alice-1 with seq 1 written as 0x190001, correctly signed",
        &resigned(&alice, &long_seq),
        "non_canonical",
    ));
    let mut trailing = base.as_bytes().to_vec();
    trailing.push(0x00);
    entries.push(invalid(
        "trailing-byte",
        "alice-1 followed by one more byte",
        &trailing,
        "trailing_bytes",
    ));
    entries.push(invalid(
        "truncated",
        "alice-1 without its last byte",
        &base.as_bytes()[..n - 1],
        "truncated",
    ));

    // Oversize: spelt as a prefix and a fill so the file stays small.
    let oversize_len = limits::MAX_ENTRY_BYTES + 1;
    let oversize = json!({
        "name": "oversize",
        "note": "1 MiB + 1 bytes: the hex prefix followed by zero bytes up to fill_to_length",
        "hex": "825a00100000",
        "fill_to_length": oversize_len,
        "verdict": "too_large",
    });
    entries.push(oversize);

    let names = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let chains = json!([
        {"name": "alice-valid", "author": "alice", "entries": names(&["alice-1", "alice-2", "alice-3", "alice-4", "alice-5", "alice-6", "alice-7"]),
         "verdict": "valid", "head": {"seq": 7, "id": chain_a[6].id().to_hex()}},
        {"name": "bob-valid", "author": "bob", "entries": names(&["bob-1", "bob-2", "bob-3"]), "verdict": "valid",
         "head": {"seq": 3, "id": chain_b[2].id().to_hex()}},
        {"name": "gap", "author": "bob", "entries": names(&["bob-1", "bob-3"]), "verdict": "gap", "index": 1},
        {"name": "not-starting-at-one", "author": "bob", "entries": names(&["bob-2", "bob-3"]), "verdict": "not_starting_at_one", "index": 0},
        {"name": "wrong-prev", "author": "bob", "entries": names(&["bob-1", "bob-2", "bob-3", "bob-4-wrong-prev"]), "verdict": "wrong_prev", "index": 3},
        {"name": "fork", "author": "bob", "entries": names(&["bob-1", "bob-2", "bob-3", "bob-3-fork"]), "verdict": "fork", "index": 3},
        {"name": "duplicate", "author": "bob", "entries": names(&["bob-1", "bob-2", "bob-2"]), "verdict": "duplicate", "index": 2},
        {"name": "wrong-author", "author": "alice", "entries": names(&["alice-1", "bob-2"]), "verdict": "wrong_author", "index": 1},
    ]);
    json!({
        "description": "Sentinel entry test vectors; see docs/protocol.md. Keys are ed25519 seeds (RFC 8032 secret keys).",
        "format_version": FORMAT_VERSION,
        "keys": keys,
        "entries": entries,
        "chains": chains,
        "heads_digest_of_empty": hex::encode(Heads::new().digest()),
    })
}

fn vector_bytes(v: &Value) -> Vec<u8> {
    let mut b = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    if let Some(len) = v.get("fill_to_length").and_then(Value::as_u64) {
        b.resize(len as usize, 0);
    }
    b
}

/// The verdict the code reaches for one entry vector.
fn verdict(bytes: Vec<u8>) -> (String, Option<SignedEntry>) {
    match SignedEntry::from_bytes(bytes) {
        Err(e) => (e.code().to_string(), None),
        Ok(s) => match s.verify() {
            Err(e) => (e.code().to_string(), None),
            Ok(()) => ("valid".to_string(), Some(s)),
        },
    }
}

/// Writes the file first when `SENTINEL_REGEN_VECTORS` is set (both tests
/// call this, so their order does not matter).
fn regenerate_if_asked() -> String {
    let generated = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("SENTINEL_REGEN_VECTORS").is_some() {
        static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = ONCE.lock().unwrap();
        std::fs::write(PATH, &generated).unwrap();
    }
    generated
}

#[test]
fn vectors_file_matches_the_code() {
    let generated = regenerate_if_asked();
    let on_disk = std::fs::read_to_string(PATH)
        .expect("docs/vectors/entries.json (regenerate with SENTINEL_REGEN_VECTORS=1)");
    assert!(
        on_disk == generated,
        "docs/vectors/entries.json differs from what the code generates: the format changed. \
         Update docs/protocol.md, regenerate with SENTINEL_REGEN_VECTORS=1 and review the diff."
    );
}

#[test]
fn every_vector_gets_its_verdict() {
    regenerate_if_asked();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let mut by_name = std::collections::HashMap::new();
    for k in file["keys"].as_array().unwrap() {
        let seed: [u8; 32] = hex::decode(k["seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            author_of(&SigningKey::from_bytes(&seed)).to_hex(),
            k["public"].as_str().unwrap()
        );
    }
    let mut n_invalid = 0;
    for v in file["entries"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let (got, entry) = verdict(vector_bytes(v));
        assert_eq!(got, v["verdict"].as_str().unwrap(), "vector {name}");
        if let Some(s) = entry {
            assert_eq!(s.id().to_hex(), v["id"].as_str().unwrap(), "vector {name}");
            assert_eq!(
                hex::encode(s.signed_bytes()),
                v["signed_hex"].as_str().unwrap()
            );
            assert_eq!(entry_json(s.entry()), v["fields"], "vector {name}");
            by_name.insert(name.to_string(), s);
        } else {
            n_invalid += 1;
        }
    }
    assert!(n_invalid >= 10);
    // Both verdicts of a chain are exercised: an empty list (or one kind
    // only) would leave one arm below checking nothing.
    let (mut n_valid_chains, mut n_refused_chains) = (0, 0);
    for c in file["chains"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let entries: Vec<SignedEntry> = c["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| by_name[n.as_str().unwrap()].clone())
            .collect();
        let author_name = c["author"].as_str().unwrap();
        let author = file["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == author_name)
            .unwrap()["public"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        match verify_chain(author, &entries) {
            Ok(head) => {
                n_valid_chains += 1;
                assert_eq!(c["verdict"], "valid", "chain {name}");
                let head = head.unwrap();
                assert_eq!(head.seq, c["head"]["seq"].as_u64().unwrap());
                assert_eq!(head.id.to_hex(), c["head"]["id"].as_str().unwrap());
            }
            Err(e) => {
                n_refused_chains += 1;
                assert_eq!(
                    e.fault.code(),
                    c["verdict"].as_str().unwrap(),
                    "chain {name}"
                );
                assert_eq!(e.index as u64, c["index"].as_u64().unwrap(), "chain {name}");
            }
        }
    }
    assert!(
        n_valid_chains >= 1 && n_refused_chains >= 1,
        "{n_valid_chains} valid and {n_refused_chains} refused chains"
    );
}
