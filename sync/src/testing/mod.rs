//! Test support, behind the `testing` feature: a test CA whose
//! "certificates" are small CBOR blobs (so sync tests need no X.509), a
//! seeded random number generator, deterministic keys, entry builders
//! (readings, media; the blobs media tests move), an in-memory [`Pair`]
//! harness and the deterministic simulator ([`sim`]).
//!
//! Test certificate: `[bstr body, bstr sig]`, body =
//! `["sentinel/test-cert/v1", bstr author(32), uint role, uint not_before_ms,
//! uint not_after_ms]`. Test revocation list: `[bstr body, bstr sig]`, body
//! = `["sentinel/test-crl/v1", uint number, [[bstr author(32), uint
//! last_valid_seq], …]]`. Both signed with ed25519 by the test CA over
//! `body`, roles numbered as in `Hello`.

// Test support: a failure here is a bug in a test, and panicking is how
// tests report it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "quic")]
pub mod flood;
mod pair;
pub mod sim;

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sentinel_schema::{
    author_of, AuthorId, Body, DeviceRole, Entry, EventId, Hlc, MediaAttached, MediaType, Point,
    ReadingValue, SensorReading, SignedEntry,
};

pub use pair::{Pair, Peer, Transmitted};

use crate::cbor::{Reader, Writer};
use crate::trust::{AuthorInfo, Revocations, TrustAnchor};

/// SplitMix64: a tiny seeded generator, so every test and simulation is
/// reproducible from its seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the bias is negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

/// Xorshift64: uniform floats from a seed, the generator the node's and
/// the hub's benchmarks draw their data from (kept as it was, so their
/// data, and `docs/benchmarks.md`'s runs, stay the same for a seed).
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// Uniform in `[0, 1)` (53 bits); the seed must not be 0.
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A deterministic signing key for test identity `n`.
pub fn key(n: u64) -> SigningKey {
    SigningKey::from_bytes(&Rng::new(n ^ 0x5e17_1ae1).bytes())
}

fn role_number(role: DeviceRole) -> u64 {
    match role {
        DeviceRole::Hub => 0,
        DeviceRole::Node => 1,
        DeviceRole::Sensor => 2,
    }
}

const CERT_CONTEXT: &str = "sentinel/test-cert/v1";
const CRL_CONTEXT: &str = "sentinel/test-crl/v1";

fn signed(ca: &SigningKey, body: Vec<u8>) -> Vec<u8> {
    let sig = ca.sign(&body);
    let mut w = Writer::default();
    w.array(2);
    w.bytes(&body);
    w.bytes(&sig.to_bytes());
    w.out
}

/// A test certificate authority.
#[derive(Debug, Clone)]
pub struct TestCa {
    key: SigningKey,
}

impl TestCa {
    pub fn new(seed: u64) -> TestCa {
        TestCa {
            key: key(seed ^ 0xca),
        }
    }

    /// The anchor that trusts this CA.
    pub fn anchor(&self) -> TestAnchor {
        TestAnchor {
            ca: self.key.verifying_key(),
        }
    }

    /// A certificate for `author`, valid over the whole of time.
    pub fn certificate(&self, author: AuthorId, role: DeviceRole) -> Vec<u8> {
        self.certificate_valid(author, role, 0, u64::MAX)
    }

    pub fn certificate_valid(
        &self,
        author: AuthorId,
        role: DeviceRole,
        not_before_ms: u64,
        not_after_ms: u64,
    ) -> Vec<u8> {
        let mut w = Writer::default();
        w.array(5);
        w.text(CERT_CONTEXT);
        w.bytes(author.as_bytes());
        w.uint(role_number(role));
        w.uint(not_before_ms);
        w.uint(not_after_ms);
        signed(&self.key, w.out)
    }

    /// Revocation list `number`: author → last valid seq.
    pub fn revocation_list(&self, number: u64, revoked: &BTreeMap<AuthorId, u64>) -> Vec<u8> {
        let mut w = Writer::default();
        w.array(3);
        w.text(CRL_CONTEXT);
        w.uint(number);
        w.array(revoked.len());
        for (author, last) in revoked {
            w.array(2);
            w.bytes(author.as_bytes());
            w.uint(*last);
        }
        signed(&self.key, w.out)
    }
}

/// Trusts what one [`TestCa`] signed.
#[derive(Debug, Clone)]
pub struct TestAnchor {
    ca: VerifyingKey,
}

impl TestAnchor {
    /// The body of `[body, sig]` if the CA's signature holds (or, when
    /// `verify` is false, without checking it).
    fn open<'a>(&self, bytes: &'a [u8], verify: bool) -> Result<&'a [u8], String> {
        let mut r = Reader::new(bytes);
        r.array("signed", 2, 2).map_err(|e| e.to_string())?;
        let body = r.bytes("body", 1, 64 * 1024).map_err(|e| e.to_string())?;
        let sig: [u8; 64] = r.fixed("sig").map_err(|e| e.to_string())?;
        if !r.is_empty() {
            return Err("trailing bytes".into());
        }
        if verify {
            self.ca
                .verify_strict(body, &Signature::from_bytes(&sig))
                .map_err(|_| "not signed by the test CA".to_string())?;
        }
        Ok(body)
    }

    fn certificate(&self, der: &[u8], verify: bool) -> Result<AuthorInfo, String> {
        let body = self.open(der, verify)?;
        let mut r = Reader::new(body);
        let read = |r: &mut Reader<'_>| -> Result<AuthorInfo, crate::MessageError> {
            r.array("cert", 5, 5)?;
            if r.text("context", 64)? != CERT_CONTEXT {
                return Err(crate::MessageError::OutOfRange {
                    field: "context",
                    what: "not a test certificate".into(),
                });
            }
            let author = AuthorId(r.fixed("author")?);
            let role = match r.uint("role")? {
                0 => DeviceRole::Hub,
                1 => DeviceRole::Node,
                _ => DeviceRole::Sensor,
            };
            Ok(AuthorInfo {
                author,
                role,
                not_before_ms: r.uint("not_before")?,
                not_after_ms: r.uint("not_after")?,
            })
        };
        read(&mut r).map_err(|e| e.to_string())
    }
}

impl TrustAnchor for TestAnchor {
    fn verify_certificate(&self, der: &[u8]) -> Result<AuthorInfo, String> {
        self.certificate(der, true)
    }

    fn stored_certificate(&self, der: &[u8]) -> Result<AuthorInfo, String> {
        self.certificate(der, false)
    }

    fn verify_revocation_list(&self, bytes: &[u8]) -> Result<Revocations, String> {
        let body = self.open(bytes, true)?;
        let mut r = Reader::new(body);
        let read = |r: &mut Reader<'_>| -> Result<Revocations, crate::MessageError> {
            r.array("crl", 3, 3)?;
            if r.text("context", 64)? != CRL_CONTEXT {
                return Err(crate::MessageError::OutOfRange {
                    field: "context",
                    what: "not a test revocation list".into(),
                });
            }
            let number = r.uint("number")?;
            let n = r.array("revoked", 0, 100_000)?;
            let mut revoked = BTreeMap::new();
            for _ in 0..n {
                r.array("revocation", 2, 2)?;
                let author = AuthorId(r.fixed("author")?);
                revoked.insert(author, r.uint("last_valid_seq")?);
            }
            Ok(Revocations { number, revoked })
        };
        read(&mut r).map_err(|e| e.to_string())
    }
}

/// Signs `body` as the entry after `prev` (`None`: the first) of `key`.
pub fn sign_after(
    key: &SigningKey,
    prev: Option<&SignedEntry>,
    wall_ms: u64,
    body: Body,
) -> SignedEntry {
    let entry = Entry {
        author: author_of(key),
        seq: prev.map_or(1, |p| p.seq() + 1),
        prev: prev.map(SignedEntry::id),
        hlc: Hlc::new(wall_ms, 0),
        actor: None,
        body,
    };
    entry.sign(key).expect("test entries are valid")
}

/// A sensor reading body whose bytes depend on `n` (about 120 B signed).
pub fn reading(n: u64) -> Body {
    Body::SensorReading(SensorReading {
        kind: "water_gauge".into(),
        values: vec![ReadingValue {
            name: "level".into(),
            value: n as f64 / 100.0,
            unit: "m".into(),
        }],
        location: None,
        measured_ms: 1_790_000_000_000 + n,
    })
}

/// A water gauge's reading: `level` metres and, if given, its `battery`
/// volts, at `at` or nowhere, measured at `measured_ms`. The shape the
/// node's and the hub's sensor tests push (and the protocol's vectors
/// show).
pub fn water_gauge(level: f64, battery: Option<f64>, at: Option<Point>, measured_ms: u64) -> Body {
    let mut values = vec![ReadingValue {
        name: "level".into(),
        value: level,
        unit: "m".into(),
    }];
    values.extend(battery.map(|v| ReadingValue {
        name: "battery".into(),
        value: v,
        unit: "V".into(),
    }));
    Body::SensorReading(SensorReading {
        kind: "water_gauge".into(),
        values,
        location: at,
        measured_ms,
    })
}

/// A real 2×2 RGBA PNG (74 bytes): the smallest photo media tests attach.
pub const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x06\x00\x00\x00\x72\xb6\x0d\x24\x00\x00\x00\x11\x49\x44\x41\x54\x78\xda\x63\x38\x21\x27\xf7\x1f\x84\x19\x60\x0c\x00\x47\x34\x08\x0d\x1b\x27\x91\xb7\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// `len` bytes that sniff as what `magic` starts (a PNG's or JPEG's
/// header), then noise from `seed` (xorshift32, non-zero): a large blob
/// that takes several chunks on the wire, the same for the same seed.
pub fn blob(magic: &[u8], len: usize, seed: u32) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    let mut x = seed;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    bytes
}

/// A media-attached body (a node may write it) of about `name_len` bytes
/// of name, so tests can make entries of a chosen size.
pub fn media(n: u64, name_len: usize) -> Body {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_be_bytes());
    Body::MediaAttached(MediaAttached {
        event: EventId([7; 16]),
        hash,
        mime: MediaType::Jpeg,
        size: 1 + n,
        name: "p".repeat(name_len.clamp(1, 255)),
    })
}

/// `n` entries of `key` from seq 1, each body from `body(i)`.
pub fn chain(key: &SigningKey, n: u64, mut body: impl FnMut(u64) -> Body) -> Vec<SignedEntry> {
    let mut out: Vec<SignedEntry> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let e = sign_after(key, out.last(), 1_790_000_000_000 + i, body(i));
        out.push(e);
    }
    out
}
