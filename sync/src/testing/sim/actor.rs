//! The simulated devices: who they are and what they write.

use sentinel_schema::{
    author_of, AuthorId, Body, Clock, DeviceRole, Entry, EventChange, EventDoc, EventEdit, EventId,
    Head, Hlc, NewEvent, Point, SignedEntry, SigningKey, Status,
};

use crate::memory::MemoryStore;
use crate::store::SyncStore;
use crate::testing::{key, reading, Rng, TestCa};

/// What kind of device a participant is; decides what it writes, whom it
/// meets and what the checks expect of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A hub or field node: writes events, meets anyone in its partition.
    Honest,
    /// A field node that only ever meets one other (`home`): everyone else
    /// gets its entries relayed (store-and-forward) and its certificate
    /// with them.
    Courier { home: usize },
    /// A sensor: writes readings and, once, an event change it may not
    /// write; it is sent nothing.
    Sensor,
    /// A node revoked (by the revocation list every store starts with)
    /// after seq [`ROGUE_LAST_VALID`]: it keeps writing, and nobody may
    /// apply what it writes after that.
    Rogue,
}

/// The rogue's last valid seq.
pub(crate) const ROGUE_LAST_VALID: u64 = 2;

#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) name: String,
    pub(crate) key: SigningKey,
    pub(crate) author: AuthorId,
    pub(crate) role: DeviceRole,
    pub(crate) kind: Kind,
    pub(crate) store: MemoryStore,
    pub(crate) clock: Clock,
    /// The seq of the sensor's forbidden event change, once written.
    pub(crate) bad_seq: Option<u64>,
    /// Every head this participant acknowledged (seq ≥ 1).
    pub(crate) acked: Vec<(AuthorId, Head)>,
}

impl Participant {
    pub(crate) fn new(
        index: usize,
        kind: Kind,
        role: DeviceRole,
        ca: &TestCa,
        seed: u64,
    ) -> Participant {
        let key = key(seed.wrapping_mul(1_000).wrapping_add(index as u64));
        let author = author_of(&key);
        let mut store = MemoryStore::with_event_view();
        store
            .add_certificates(vec![(author, ca.certificate(author, role))])
            .expect("in memory");
        let name = match kind {
            Kind::Honest if role == DeviceRole::Hub => format!("hub{index}"),
            Kind::Honest => format!("node{index}"),
            Kind::Courier { .. } => format!("courier{index}"),
            Kind::Sensor => format!("sensor{index}"),
            Kind::Rogue => format!("rogue{index}"),
        };
        Participant {
            name,
            key,
            author,
            role,
            kind,
            store,
            clock: Clock::resume(Hlc::default()),
            bad_seq: None,
            acked: Vec::new(),
        }
    }

    /// Whether the checks expect this store to converge with the others.
    pub(crate) fn is_honest(&self) -> bool {
        matches!(self.kind, Kind::Honest | Kind::Courier { .. })
    }

    fn append(&mut self, body: Body, now_ms: u64) {
        let log = self.store.log(&self.author);
        let prev = log.last().map(SignedEntry::id);
        let seq = log.len() as u64 + 1;
        let hlc = self
            .clock
            .tick(now_ms)
            .expect("the simulated clock never overflows");
        let entry = Entry {
            author: self.author,
            seq,
            prev,
            hlc,
            actor: Some(format!("officer.{}", self.name)),
            body,
        };
        let signed = entry.sign(&self.key).expect("simulated entries are valid");
        self.store
            .append_local(signed)
            .expect("a local entry extends the chain");
    }

    /// One local write; returns whether anything was written.
    pub(crate) fn write(&mut self, rng: &mut Rng, now_ms: u64) -> bool {
        match self.kind {
            Kind::Sensor => {
                let n_written = self.store.log(&self.author).len();
                if self.bad_seq.is_none() && n_written >= 2 && rng.chance(250) {
                    self.write_forbidden_change(now_ms);
                } else {
                    self.append(reading(rng.below(10_000)), now_ms);
                }
                true
            }
            _ => self.write_event(rng, now_ms),
        }
    }

    /// The sensor's forbidden write: an event change.
    pub(crate) fn write_forbidden_change(&mut self, now_ms: u64) {
        let new = new_event(0, now_ms);
        let (_, change) = EventDoc::create(&self.author, &new, now_ms).expect("valid event");
        self.bad_seq = Some(self.store.log(&self.author).len() as u64 + 1);
        self.append(
            Body::EventChange(EventChange {
                event: EventId([0xee; 16]),
                change,
            }),
            now_ms,
        );
    }

    /// Creates an event, or edits one this store knows.
    pub(crate) fn write_event(&mut self, rng: &mut Rng, now_ms: u64) -> bool {
        let known = self.store.event_ids();
        if known.is_empty() || rng.chance(250) {
            let new = new_event(rng.below(1_000), now_ms);
            let (_, change) = EventDoc::create(&self.author, &new, now_ms).expect("valid event");
            let event = EventId(rng.bytes());
            self.append(Body::EventChange(EventChange { event, change }), now_ms);
            return true;
        }
        let event = known[rng.below(known.len() as u64) as usize];
        // An event whose first change has not arrived cannot be edited.
        let Some(mut doc) = self
            .store
            .event_doc(&event)
            .filter(|d| d.view().is_ok())
            .cloned()
        else {
            return false;
        };
        let edit = random_edit(rng, now_ms, &self.name);
        match doc.edit(&self.author, &edit, now_ms) {
            Ok(change) => {
                self.append(Body::EventChange(EventChange { event, change }), now_ms);
                true
            }
            // Refused by the workflow, or no change: nothing to write.
            Err(_) => false,
        }
    }
}

fn new_event(n: u64, now_ms: u64) -> NewEvent {
    NewEvent {
        title: format!("incident {n}"),
        description: "reported in the simulator".into(),
        category: ["flood", "fire", "road"][(n % 3) as usize].into(),
        severity: 1 + (n % 5) as u8,
        location: Point::new((n % 360) as f64 - 180.0, (n % 180) as f64 - 90.0).expect("in range"),
        reported_ms: now_ms,
    }
}

fn random_edit(rng: &mut Rng, now_ms: u64, who: &str) -> EventEdit {
    match rng.below(7) {
        0 => EventEdit::Title(format!("incident {}", rng.below(100))),
        1 => EventEdit::Severity(1 + rng.below(5) as u8),
        2 => EventEdit::Note {
            text: format!("note {} by {who}", rng.below(1_000)),
            actor: Some(format!("officer.{who}")),
            at_ms: now_ms,
        },
        3 => EventEdit::Location(
            Point::new(rng.below(360) as f64 - 180.0, rng.below(180) as f64 - 90.0)
                .expect("in range"),
        ),
        4 => EventEdit::Assign(format!("officer.{}", rng.below(5))),
        5 => EventEdit::Status(
            [Status::InProgress, Status::Resolved, Status::Closed][rng.below(3) as usize],
        ),
        _ => EventEdit::Description(format!("update {}", rng.below(1_000))),
    }
}
