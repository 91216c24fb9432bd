//! The sensor test vectors of `docs/protocol.md` part 3, kept in
//! `docs/vectors/sensor.json`: the file is what the code generates today
//! (regenerate with `SENTINEL_REGEN_VECTORS=1 cargo test -p sentinel-sync
//! --test integration sensor_vectors` and review the diff), every hex
//! string in it appears in the document, and the push body read from the
//! file is accepted by `push::receive`.

use ed25519_dalek::SigningKey;
use sentinel_schema::{
    author_of, Body, Entry, Hlc, Point, ReadingValue, SensorReading, SignedEntry,
};
use sentinel_sync::push::{self, Outcome, MAX_FUTURE_MS};
use sentinel_sync::testing::TestCa;
use sentinel_sync::{MemoryStore, Revocations, SyncStore};
use serde_json::{json, Value};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/sensor.json");
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");

/// The vectors' sensor key: the RFC 8032 seed `53 53 … 53`.
const SEED: [u8; 32] = [0x53; 32];

fn reading(seq: u64, prev: Option<&SignedEntry>, level: f64, wall_ms: u64) -> SignedEntry {
    let key = SigningKey::from_bytes(&SEED);
    Entry {
        author: author_of(&key),
        seq,
        prev: prev.map(SignedEntry::id),
        hlc: Hlc::new(wall_ms, 0),
        actor: None,
        body: Body::SensorReading(SensorReading {
            kind: "water_gauge".into(),
            values: vec![
                ReadingValue {
                    name: "level".into(),
                    value: level,
                    unit: "m".into(),
                },
                ReadingValue {
                    name: "battery".into(),
                    value: 3.7,
                    unit: "V".into(),
                },
            ],
            location: Some(Point::new(13.405, 52.52).unwrap()),
            measured_ms: wall_ms - 500,
        }),
    }
    .sign(&key)
    .unwrap()
}

pub(crate) fn entries() -> Vec<SignedEntry> {
    let first = reading(1, None, 2.5, 1_795_000_000_000);
    let second = reading(2, Some(&first), 2.75, 1_795_000_060_000);
    vec![first, second]
}

fn entry_json(name: &str, e: &SignedEntry) -> Value {
    json!({
        "name": name,
        "seq": e.seq(),
        "hex": hex::encode(e.as_bytes()),
        "signed_hex": hex::encode(e.signed_bytes()),
        "signature": hex::encode(e.signature().to_bytes()),
        "id": e.id().to_hex(),
    })
}

fn generate() -> Value {
    let key = SigningKey::from_bytes(&SEED);
    let entries = entries();
    json!({
        "note": "docs/protocol.md part 3: a water gauge's first two readings and one push of both",
        "key": {"seed": hex::encode(SEED), "public": author_of(&key).to_hex()},
        "entries": [entry_json("reading-1", &entries[0]), entry_json("reading-2", &entries[1])],
        "push": {
            "name": "push-1-2",
            "certificate": null,
            "hex": hex::encode(push::encode(None, &entries)),
        },
    })
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn sensor_vectors_match_the_code_and_the_document() {
    let generated = generate();
    if std::env::var_os("SENTINEL_REGEN_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(
        file, generated,
        "docs/vectors/sensor.json is stale: regenerate it (see this file's doc)"
    );

    // Every hex string of the file is in the document (whitespace aside).
    let doc: String = std::fs::read_to_string(DOC)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut hexes = vec![
        &file["key"]["seed"],
        &file["key"]["public"],
        &file["push"]["hex"],
    ];
    // The file's two readings (the push below stores two): each one's
    // hex strings are looked for, not those of an empty list.
    let entries = file["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{file}");
    for e in entries {
        hexes.extend([&e["hex"], &e["id"], &e["signature"]]);
    }
    for h in hexes {
        let h = h.as_str().unwrap();
        assert!(doc.contains(h), "docs/protocol.md lacks {h}");
    }
}

#[test]
fn the_vector_push_is_accepted_from_the_file_alone() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let key = SigningKey::from_bytes(&hex_of(&file["key"]["seed"]).try_into().unwrap());
    let author = author_of(&key);
    assert_eq!(author.to_hex(), file["key"]["public"].as_str().unwrap());
    assert_eq!(file["entries"].as_array().unwrap().len(), 2, "{file}");
    for e in file["entries"].as_array().unwrap() {
        let entry = SignedEntry::from_bytes(hex_of(&e["hex"])).unwrap();
        entry.verify().unwrap();
        assert_eq!(entry.id().to_hex(), e["id"].as_str().unwrap());
        assert_eq!(
            hex::encode(entry.signed_bytes()),
            e["signed_hex"].as_str().unwrap()
        );
    }

    let ca = TestCa::new(1);
    let mut store = MemoryStore::new();
    store
        .add_certificates(vec![(
            author,
            ca.certificate(author, sentinel_schema::DeviceRole::Sensor),
        )])
        .unwrap();
    let body = hex_of(&file["push"]["hex"]);
    let now_ms = 1_795_000_060_000;
    let accepted = push::receive(
        &mut store,
        &ca.anchor(),
        &Revocations::default(),
        now_ms,
        MAX_FUTURE_MS,
        &body,
    )
    .unwrap();
    assert_eq!(accepted.report.n_stored, 2);
    assert_eq!(accepted.report.entries.len(), 2, "{:?}", accepted.report);
    assert!(accepted
        .report
        .entries
        .iter()
        .all(|e| e.outcome == Outcome::Stored));
    // Each reading alone, bare, is a duplicate now.
    for e in file["entries"].as_array().unwrap() {
        let again = push::receive(
            &mut store,
            &ca.anchor(),
            &Revocations::default(),
            now_ms,
            MAX_FUTURE_MS,
            &hex_of(&e["hex"]),
        )
        .unwrap();
        assert_eq!(again.report.n_duplicates, 1);
    }
}
