//! Builders shared by the schema tests: deterministic keys and chains.

use sentinel_schema::*;

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

pub fn event_change(n: u8) -> Body {
    Body::EventChange(EventChange {
        event: EventId([n; 16]),
        change: vec![0x85, 0x6f, 0x4a, 0x83, n, 1, 2, 3],
    })
}

/// An unsigned entry following `prev` (or the first one).
pub fn next_entry(key: &SigningKey, prev: Option<&SignedEntry>, body: Body) -> Entry {
    Entry {
        author: author_of(key),
        seq: prev.map_or(1, |p| p.seq() + 1),
        prev: prev.map(|p| p.id()),
        hlc: Hlc::new(1_790_000_000_000 + prev.map_or(0, |p| p.seq()), 0),
        actor: Some("officer.ada".into()),
        body,
    }
}

/// A valid chain of `n` event-change entries.
pub fn chain(key: &SigningKey, n: usize) -> Vec<SignedEntry> {
    let mut out: Vec<SignedEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let e = next_entry(key, out.last(), event_change((i % 251) as u8));
        out.push(e.sign(key).unwrap());
    }
    out
}
