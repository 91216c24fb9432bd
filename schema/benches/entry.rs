//! Entry benchmarks: sign, verify (single and batch), encode, decode and
//! chain verification, on entries of a realistic size (~190 bytes).
//!
//! Run: `cargo bench -p sentinel-schema --bench entry`
//! Prints a Markdown table (median of 7 rounds) for `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::Signature;
use sentinel_schema::*;

const ROUNDS: usize = 7;

fn entries(key: &SigningKey, n: usize) -> Vec<SignedEntry> {
    let mut out: Vec<SignedEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let prev = out.last();
        let e = Entry {
            author: author_of(key),
            seq: i as u64 + 1,
            prev: prev.map(|p| p.id()),
            hlc: Hlc::new(1_795_000_000_000 + i as u64, 0),
            actor: Some("officer.ada".into()),
            body: Body::EventChange(EventChange {
                event: EventId([(i % 200) as u8; 16]),
                change: vec![0x42; 80],
            }),
        };
        out.push(e.sign(key).unwrap());
    }
    out
}

/// Runs `f` (which does `n` operations) `ROUNDS` times; returns the median
/// time per operation.
fn measure(n: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed() / n as u32
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn row(name: &str, per_op: Duration) {
    let ns = per_op.as_nanos().max(1) as f64;
    println!("| {name} | {:.2} µs | {:.0} /s |", ns / 1000.0, 1e9 / ns);
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let key = SigningKey::from_bytes(&[7; 32]);
    let n = 2048;
    let chain = entries(&key, n);
    let unsigned: Vec<Entry> = chain.iter().map(|s| s.entry().clone()).collect();
    let raw: Vec<Vec<u8>> = chain.iter().map(|s| s.as_bytes().to_vec()).collect();
    let avg = raw.iter().map(Vec::len).sum::<usize>() / n;

    println!("Entries of {avg} bytes on average; median of {ROUNDS} rounds.\n");
    println!("| operation | time per entry | rate (one core) |");
    println!("|---|---|---|");
    row(
        "encode (Entry::encode)",
        measure(n, || {
            for e in &unsigned {
                black_box(e.encode());
            }
        }),
    );
    row(
        "sign (encode + ed25519 + id)",
        measure(n, || {
            for e in &unsigned {
                black_box(e.clone().sign(&key).unwrap());
            }
        }),
    );
    row(
        "decode (SignedEntry::from_bytes, with canonical check)",
        measure(n, || {
            for b in &raw {
                black_box(SignedEntry::from_bytes(b.clone()).unwrap());
            }
        }),
    );
    row(
        "verify one by one (verify_strict)",
        measure(n, || {
            for e in &chain {
                e.verify().unwrap();
            }
        }),
    );
    for batch in [64usize, 256, 1024] {
        row(
            &format!("verify batch of {batch} (verify_signatures, with small-order checks)"),
            measure(n, || {
                for c in chain.chunks(batch) {
                    assert!(verify_signatures(c).iter().all(Result::is_ok));
                }
            }),
        );
    }
    let msgs: Vec<&[u8]> = chain.iter().map(|e| e.signed_bytes()).collect();
    let sigs: Vec<Signature> = chain.iter().map(|e| *e.signature()).collect();
    let keys = vec![key.verifying_key(); n];
    row(
        "verify batch of 256 (bare ed25519_dalek::verify_batch, for comparison)",
        measure(n, || {
            for i in (0..n).step_by(256) {
                ed25519_dalek::verify_batch(
                    &msgs[i..i + 256],
                    &sigs[i..i + 256],
                    &keys[i..i + 256],
                )
                .unwrap();
            }
        }),
    );
    row(
        "chain verify (signatures batched + links), 2048 entries",
        measure(n, || {
            black_box(verify_chain(author_of(&key), &chain).unwrap());
        }),
    );
    let _ = black_box(&raw);
}
