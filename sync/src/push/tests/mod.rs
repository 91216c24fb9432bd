//! Sensor push against the in-memory store and the test CA: every
//! refusal of issue #7 leaves the store as it was. The world and its
//! helpers are here, with the report's JSON and the property tests;
//! `receive.rs` pushes whole bodies, `two_steps.rs` runs `verify` and
//! `apply` apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use sentinel_schema::{
    author_of, Body, ChainFault, DecodeError, DeviceRole, Entry, Hlc, MediaAttached, MediaType,
    ReadingValue, SensorReading, SignedEntry,
};

use super::*;
use crate::cbor::Writer;
use crate::memory::{MemoryStore, MemoryStoreError};
use crate::message::MessageError;
use crate::testing::{chain, key, media, reading, sign_after, TestAnchor, TestCa};

/// The receiver's clock: a while after the test chains were written.
const NOW: u64 = 1_790_000_100_000;

struct World {
    ca: TestCa,
    anchor: TestAnchor,
    store: MemoryStore,
    revocations: Revocations,
    sensor: SigningKey,
    cert: Vec<u8>,
}

fn world() -> World {
    let ca = TestCa::new(7);
    let sensor = key(70);
    let cert = ca.certificate(author_of(&sensor), DeviceRole::Sensor);
    World {
        anchor: ca.anchor(),
        ca,
        store: MemoryStore::new(),
        revocations: Revocations::default(),
        sensor,
        cert,
    }
}

impl World {
    fn push(&mut self, bytes: &[u8]) -> Result<Accepted, PushError<MemoryStoreError>> {
        receive(
            &mut self.store,
            &self.anchor,
            &self.revocations,
            NOW,
            MAX_FUTURE_MS,
            bytes,
        )
    }

    /// `n` readings of the sensor, seq 1..=n.
    fn readings(&self, n: u64) -> Vec<SignedEntry> {
        chain(&self.sensor, n, reading)
    }

    /// Pushes with the certificate; must be accepted.
    fn accept(&mut self, entries: &[SignedEntry]) -> PushReport {
        let cert = self.cert.clone();
        self.push(&encode(Some(&cert), entries)).unwrap().report
    }

    /// Pushes; must be refused with `code` at `index` and store nothing.
    #[track_caller]
    fn refuse(&mut self, bytes: &[u8], code: &str, index: Option<usize>) {
        let before = snapshot(&self.store);
        let err = self.push(bytes).unwrap_err();
        assert_eq!((err.code(), err.index()), (code, index), "{err}");
        assert_eq!(snapshot(&self.store), before, "nothing stored");
    }
}

/// What a push may change: heads, certificates of the sensors in play,
/// quarantine and fork evidence.
fn snapshot(store: &MemoryStore) -> (String, usize, usize, Vec<Option<Vec<u8>>>) {
    let certs = [70, 71, 72]
        .into_iter()
        .map(|n| store.certificate(&author_of(&key(n))).unwrap())
        .collect();
    (
        format!("{:?}", store.heads().unwrap()),
        store.quarantined().count(),
        store.forks().len(),
        certs,
    )
}

fn outcomes(r: &PushReport) -> Vec<(u64, Outcome)> {
    r.entries.iter().map(|e| (e.seq, e.outcome)).collect()
}

/// A reading body with chosen values, location and time.
fn reading_at(measured_ms: u64, value: f64) -> Body {
    Body::SensorReading(SensorReading {
        kind: "water_gauge".into(),
        values: vec![ReadingValue {
            name: "level".into(),
            value,
            unit: "m".into(),
        }],
        location: None,
        measured_ms,
    })
}

/// `[entry bytes, signature]` signed by `key` without any check.
fn sign_raw(key: &SigningKey, entry_bytes: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.array(2);
    w.bytes(entry_bytes);
    w.bytes(&key.sign(entry_bytes).to_bytes());
    w.out
}

mod receive;
mod two_steps;

#[test]
fn the_report_is_json_for_the_http_answer() {
    let mut w = world();
    let entries = w.readings(2);
    w.accept(&entries[..1]);
    let report = w.accept(&entries);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "author": author_of(&w.sensor).to_hex(),
            "n_stored": 1,
            "n_duplicates": 1,
            "entries": [
                {"seq": 1, "id": entries[0].id().to_hex(), "outcome": "duplicate"},
                {"seq": 2, "id": entries[1].id().to_hex(), "outcome": "stored"},
            ],
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let mut w = world();
        let _ = w.push(&bytes);
    }

    /// A valid push with one byte changed is either accepted whole or
    /// refused with nothing stored.
    #[test]
    fn damaged_pushes_are_all_or_nothing(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut w = world();
        let entries = w.readings(3);
        let mut bytes = encode(Some(&w.cert), &entries);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let before = snapshot(&w.store);
        match w.push(&bytes) {
            Ok(a) => prop_assert_eq!(w.store.n_entries(), a.report.n_stored),
            Err(_) => prop_assert_eq!(snapshot(&w.store), before),
        }
    }
}
