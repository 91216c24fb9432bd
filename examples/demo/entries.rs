//! Part 1: signed, hash-chained entries and what happens to attempts to
//! rewrite them.

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use rand_core::OsRng;
use sentinel_schema::*;

/// One device's log: its key, clock and entries.
struct Log {
    key: SigningKey,
    clock: Clock,
    entries: Vec<SignedEntry>,
}

impl Log {
    fn new() -> Self {
        Log {
            key: SigningKey::generate(&mut OsRng),
            clock: Clock::resume(Hlc::default()),
            entries: Vec::new(),
        }
    }

    fn author(&self) -> AuthorId {
        author_of(&self.key)
    }

    fn append(&mut self, actor: Option<&str>, body: Body) -> Result<&SignedEntry> {
        let prev = self.entries.last();
        let entry = Entry {
            author: self.author(),
            seq: prev.map_or(1, |p| p.seq() + 1),
            prev: prev.map(|p| p.id()),
            hlc: self.clock.tick(sentinel_node::clock::now_ms())?,
            actor: actor.map(str::to_owned),
            body,
        };
        self.entries.push(entry.sign(&self.key)?);
        self.entries.last().context("just pushed")
    }
}

fn describe(e: &SignedEntry) -> String {
    let what = match &e.entry().body {
        Body::EventChange(c) => format!("event {} changed", c.event.short()),
        Body::MediaAttached(m) => format!(
            "{} \"{}\" attached ({} bytes)",
            m.mime.as_mime(),
            m.name,
            m.size
        ),
        Body::SensorReading(r) => format!(
            "{} reading: {}",
            r.kind,
            r.values
                .iter()
                .map(|v| format!("{} = {} {}", v.name, v.value, v.unit))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.kind().as_str().to_string(),
    };
    format!(
        "  #{:<2} {}  {:>3} bytes  hlc {}  {}",
        e.seq(),
        e.id().short(),
        e.as_bytes().len(),
        e.entry().hlc,
        what
    )
}

fn expect_fault(name: &str, author: AuthorId, entries: &[SignedEntry], code: &str) -> Result<()> {
    match verify_chain(author, entries) {
        Ok(_) => bail!("{name}: the tampering was NOT detected"),
        Err(e) => {
            println!("  {name:<28} detected → {e}");
            ensure!(
                e.fault.code() == code,
                "{name}: expected {code}, got {}",
                e.fault.code()
            );
            Ok(())
        }
    }
}

pub fn run(quick: bool) -> Result<()> {
    println!("== Part 1: signed, hash-chained entries\n");
    let mut officer = Log::new();
    let mut gauge = Log::new();
    println!("Officer's device key {}", officer.author());
    println!("Water gauge key      {}\n", gauge.author());

    let flood = EventId(rand_event_id());
    officer.append(
        Some("officer.ada"),
        Body::EventChange(EventChange {
            event: flood,
            change: b"report: flooding at the north bridge, severity 4".to_vec(),
        }),
    )?;
    officer.append(
        Some("officer.ada"),
        Body::MediaAttached(MediaAttached {
            event: flood,
            hash: [0x5a; 32],
            mime: MediaType::Jpeg,
            size: 482_113,
            name: "north-bridge.jpg".into(),
        }),
    )?;
    for (i, level) in [2.10, 2.85, 3.40].into_iter().enumerate() {
        gauge.append(
            None,
            Body::SensorReading(SensorReading {
                kind: "water_gauge".into(),
                values: vec![ReadingValue {
                    name: "level".into(),
                    value: level,
                    unit: "m".into(),
                }],
                location: Some(Point::new(13.4049, 52.5200)?),
                measured_ms: sentinel_node::clock::now_ms() + i as u64,
            }),
        )?;
    }
    for step in [
        "status: assigned to officer.bo",
        "note: road closed, crew on site",
        "status: resolved",
    ] {
        officer.append(
            Some("officer.ada"),
            Body::EventChange(EventChange {
                event: flood,
                change: step.as_bytes().to_vec(),
            }),
        )?;
    }

    println!("Officer's log:");
    officer
        .entries
        .iter()
        .for_each(|e| println!("{}", describe(e)));
    println!("Gauge's log:");
    gauge
        .entries
        .iter()
        .for_each(|e| println!("{}", describe(e)));

    // Entries travel as bytes; a receiver decodes and verifies them.
    let received: Vec<SignedEntry> = officer
        .entries
        .iter()
        .map(|e| SignedEntry::from_bytes(e.as_bytes().to_vec()))
        .collect::<Result<_, _>>()?;
    let head = verify_chain(officer.author(), &received)?.context("chain is not empty")?;
    let gauge_head = verify_chain(gauge.author(), &gauge.entries)?.context("chain is not empty")?;
    println!(
        "\nBoth chains verify: officer head #{} {}, gauge head #{} {}",
        head.seq,
        head.id.short(),
        gauge_head.seq,
        gauge_head.id.short()
    );
    let heads: Heads = [(officer.author(), head), (gauge.author(), gauge_head)]
        .into_iter()
        .collect();
    println!(
        "Heads digest (what two stores compare to know they are in sync): {}",
        hex::encode(&heads.digest()[..8])
    );

    println!("\nTrying to rewrite history:");
    let a = officer.author();
    let mut changed = received.clone();
    let mut bytes = changed[2].as_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 80] ^= 0x01; // one bit inside the signed content
    changed[2] = SignedEntry::from_bytes(bytes)?;
    expect_fault("one bit changed in #3", a, &changed, "bad_signature")?;

    let mut deleted = received.clone();
    deleted.remove(3);
    expect_fault("entry #4 deleted", a, &deleted, "gap")?;

    let mut swapped = received.clone();
    swapped.swap(1, 2);
    expect_fault("entries #2 and #3 swapped", a, &swapped, "gap")?;

    // The author itself signs a second version of #2 ("I never said that").
    let rewrite = Entry {
        author: a,
        seq: 2,
        prev: Some(received[0].id()),
        hlc: received[1].entry().hlc,
        actor: Some("officer.ada".into()),
        body: Body::EventChange(EventChange {
            event: flood,
            change: b"report: nothing happened".to_vec(),
        }),
    }
    .sign(&officer.key)?;
    let mut forked = received.clone();
    forked.push(rewrite);
    expect_fault("second version of #2 signed", a, &forked, "fork")?;

    let mut foreign = received.clone();
    foreign[4] = gauge.entries[1].clone();
    expect_fault("another device's entry", a, &foreign, "wrong_author")?;

    if !quick {
        let mut bulk = Log::new();
        for i in 0..20_000u32 {
            bulk.append(
                Some("officer.ada"),
                Body::EventChange(EventChange {
                    event: flood,
                    change: i.to_be_bytes().repeat(20),
                }),
            )?;
        }
        let t = Instant::now();
        for e in &bulk.entries {
            e.verify()?;
        }
        let single = t.elapsed();
        let t = Instant::now();
        verify_chain(bulk.author(), &bulk.entries)?;
        let batch = t.elapsed();
        println!(
            "\nVerifying 20,000 entries: one by one {:.0} entries/s, as a chain with batch signatures {:.0} entries/s ({:.1}×)",
            20_000.0 / single.as_secs_f64(),
            20_000.0 / batch.as_secs_f64(),
            single.as_secs_f64() / batch.as_secs_f64()
        );
    }
    Ok(())
}

fn rand_event_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut id);
    id
}
