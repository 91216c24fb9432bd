//! A deterministic simulator of many devices syncing over a hostile
//! network: seeded randomness only, no sockets, no sleeps, virtual time.
//!
//! Participants: a hub and field nodes (`n_nodes` honest devices in all),
//! a courier that only ever meets one node (everyone else gets its
//! entries, and its certificate, relayed), a sensor (which, once, writes
//! an event change it may not write) and a rogue node revoked after seq 2
//! by the revocation list every store starts with. A second revocation
//! list appears at one node mid-run and must reach everyone.
//!
//! The chaotic phase runs `steps` random steps: local writes (events
//! created and edited through Automerge, notes, readings), sessions
//! opened between random pairs inside random partitions, frames delivered
//! one at a time — some dropped, duplicated, reordered or garbled —
//! connections cut, devices crashed (every session lost, the committed
//! store kept), store failures injected, timeouts. A session that sees a
//! bad frame closes with a reason; a later session starts afresh.
//!
//! Then the partitions heal and every allowed pair syncs, cleanly, round
//! after round, until a round changes nothing; `check.rs` then asserts
//! convergence (equal heads and equal event views on every honest
//! device), that no acknowledged entry was lost, and that the sensor's
//! and the rogue's forbidden entries were refused everywhere.

mod actor;
mod check;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sentinel_schema::{AuthorId, DeviceRole};

use self::actor::{Kind, Participant, ROGUE_LAST_VALID};
use crate::message::{self, Message};
use crate::session::{Session, SessionConfig, SessionEvent};
use crate::store::SyncStore;
use crate::testing::{Rng, TestAnchor, TestCa};

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// Seeds everything: keys, writes, which pairs meet, every fault.
    pub seed: u64,
    /// Honest devices (the first is a hub), at least 4; the courier, the
    /// sensor and the rogue come on top.
    pub n_nodes: usize,
    /// Steps of the chaotic phase.
    pub steps: usize,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            n_nodes: 5,
            steps: 300,
        }
    }
}

/// What happened in one run.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub seed: u64,
    /// Entries in every honest store at the end.
    pub n_entries: usize,
    /// Events in every honest store at the end.
    pub n_events: usize,
    pub sessions: u64,
    /// Sessions closed, by the code of the side that closed them.
    pub closes: BTreeMap<String, u64>,
    pub frames: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub garbled: u64,
    pub crashes: u64,
    pub store_failures: u64,
    /// Clean rounds until nothing changed.
    pub rounds: usize,
}

/// Runs one simulation; `Err` says which property broke.
pub fn run(config: &SimConfig) -> Result<SimReport, String> {
    let mut world = World::new(config);
    for _ in 0..config.steps {
        world.step()?;
    }
    world.report.rounds = world.settle()?;
    world.check()?;
    Ok(world.report)
}

/// One connection: two sessions and a queue of frames each way.
struct Link {
    ends: [usize; 2],
    sessions: [Session; 2],
    /// `queues[s]`: frames from `ends[s]` on their way to the other end.
    queues: [VecDeque<Vec<u8>>; 2],
    dead: bool,
}

struct World {
    rng: Rng,
    now_ms: u64,
    ca: TestCa,
    trust: Arc<TestAnchor>,
    people: Vec<Participant>,
    group: Vec<u64>,
    links: BTreeMap<(usize, usize), Link>,
    batch: usize,
    in_flight: usize,
    /// The second revocation list, once it has appeared somewhere.
    second_list: Option<Vec<u8>>,
    /// Entries applied and lists learned since last reset (for quiescence).
    changes: u64,
    /// The last session close, in words (for failure messages).
    last_close: String,
    report: SimReport,
}

impl World {
    fn new(config: &SimConfig) -> World {
        let mut rng = Rng::new(config.seed);
        let ca = TestCa::new(config.seed);
        let n = config.n_nodes.max(4);
        let mut people = Vec::new();
        for i in 0..n {
            let role = if i == 0 {
                DeviceRole::Hub
            } else {
                DeviceRole::Node
            };
            people.push(Participant::new(i, Kind::Honest, role, &ca, config.seed));
        }
        let home = 1 + rng.below(n as u64 - 1) as usize;
        people.push(Participant::new(
            n,
            Kind::Courier { home },
            DeviceRole::Node,
            &ca,
            config.seed,
        ));
        people.push(Participant::new(
            n + 1,
            Kind::Sensor,
            DeviceRole::Sensor,
            &ca,
            config.seed,
        ));
        people.push(Participant::new(
            n + 2,
            Kind::Rogue,
            DeviceRole::Node,
            &ca,
            config.seed,
        ));
        let rogue = people[n + 2].author;
        let first_list = ca.revocation_list(1, &[(rogue, ROGUE_LAST_VALID)].into_iter().collect());
        for p in &mut people {
            p.store
                .set_revocation_list(first_list.clone())
                .expect("in memory");
        }
        let batch = 1 + rng.below(16) as usize;
        let in_flight = 1 + rng.below(4) as usize;
        World {
            rng,
            now_ms: 1_790_000_000_000,
            trust: Arc::new(ca.anchor()),
            ca,
            group: vec![0; people.len()],
            people,
            links: BTreeMap::new(),
            batch,
            in_flight,
            second_list: None,
            changes: 0,
            last_close: String::new(),
            report: SimReport {
                seed: config.seed,
                ..SimReport::default()
            },
        }
    }

    fn allowed(&self, i: usize, j: usize) -> bool {
        let courier_ok = |a: usize, b: usize| match self.people[a].kind {
            Kind::Courier { home } => b == home,
            _ => true,
        };
        i != j && self.group[i] == self.group[j] && courier_ok(i, j) && courier_ok(j, i)
    }

    fn step(&mut self) -> Result<(), String> {
        self.now_ms += 1 + self.rng.below(20);
        let n = self.people.len() as u64;
        match self.rng.below(1000) {
            0..=159 => {
                let p = self.rng.below(n) as usize;
                let now = self.now_ms;
                if self.people[p].write(&mut self.rng, now) {
                    self.notify(p)?;
                }
            }
            160..=259 => {
                let (i, j) = (self.rng.below(n) as usize, self.rng.below(n) as usize);
                if self.allowed(i, j) && !self.links.contains_key(&(i.min(j), i.max(j))) {
                    self.connect(i, j)?;
                }
            }
            260..=899 => {
                if !self.links.is_empty() {
                    let k = self.rng.below(self.links.len() as u64) as usize;
                    let key = *self.links.keys().nth(k).expect("k is in range");
                    let side = self.rng.below(2) as usize;
                    self.deliver(key, side, true)?;
                }
            }
            900..=949 => {
                self.now_ms += self.rng.below(4_000);
                self.timeouts()?;
            }
            950..=969 => {
                if !self.links.is_empty() {
                    let k = self.rng.below(self.links.len() as u64) as usize;
                    let key = *self.links.keys().nth(k).expect("k is in range");
                    self.links.remove(&key);
                }
            }
            970..=979 => {
                let groups = 1 + self.rng.below(3);
                for g in self.group.iter_mut() {
                    *g = self.rng.below(groups);
                }
                let cut: Vec<_> = self
                    .links
                    .keys()
                    .copied()
                    .filter(|(i, j)| !self.allowed(*i, *j))
                    .collect();
                for key in cut {
                    self.links.remove(&key);
                }
            }
            980..=989 => {
                // A crash: every session of the device is lost; its store,
                // being committed, is kept.
                let p = self.rng.below(n) as usize;
                self.links.retain(|(i, j), _| *i != p && *j != p);
                self.report.crashes += 1;
            }
            990..=994 => {
                let p = self.rng.below(n) as usize;
                self.people[p].store.fail_next_apply();
                self.report.store_failures += 1;
            }
            _ => {
                if self.second_list.is_none() {
                    let rogue = self
                        .people
                        .iter()
                        .find(|p| p.kind == Kind::Rogue)
                        .map(|p| p.author);
                    let mut revoked: BTreeMap<AuthorId, u64> = BTreeMap::new();
                    revoked.extend(rogue.map(|r| (r, ROGUE_LAST_VALID)));
                    revoked.insert(AuthorId([0xab; 32]), 0);
                    let list = self.ca.revocation_list(2, &revoked);
                    let p = self.rng.below(n) as usize;
                    self.people[p]
                        .store
                        .set_revocation_list(list.clone())
                        .expect("in memory");
                    self.second_list = Some(list);
                }
            }
        }
        Ok(())
    }

    /// The session of `p` with `peer`, who is known by its certificate's
    /// role (as the QUIC driver tells a session).
    fn config(&self, p: usize, peer: usize) -> SessionConfig {
        let mut c = SessionConfig::new(self.people[p].role, self.trust.clone());
        c.peer_role = Some(self.people[peer].role);
        // Own entries first: the simulator's invariants hold with it.
        c.own = Some(self.people[p].author);
        c.max_batch_entries = self.batch;
        c.max_in_flight = self.in_flight;
        c.idle_timeout_ms = 3_000;
        c
    }

    fn connect(&mut self, i: usize, j: usize) -> Result<(), String> {
        let key = (i.min(j), i.max(j));
        let mut link = Link {
            ends: [key.0, key.1],
            sessions: [
                Session::new(self.config(key.0, key.1)),
                Session::new(self.config(key.1, key.0)),
            ],
            queues: [VecDeque::new(), VecDeque::new()],
            dead: false,
        };
        for s in 0..2 {
            let store = &self.people[link.ends[s]].store;
            link.sessions[s]
                .start(store, self.now_ms)
                .map_err(|e| format!("start failed: {e}"))?;
        }
        self.report.sessions += 1;
        self.links.insert(key, link);
        self.pump(key)
    }

    /// Moves frames out of both sessions onto the link, handles their
    /// events, and lets the devices whose stores changed tell their other
    /// sessions (the live relay). Removes the link once a session closed.
    fn pump(&mut self, key: (usize, usize)) -> Result<(), String> {
        let mut changed = Vec::new();
        let Some(link) = self.links.get_mut(&key) else {
            return Ok(());
        };
        for s in 0..2 {
            let p = link.ends[s];
            while let Some(frame) = link.sessions[s].poll_transmit() {
                // An Ack is `[4, n, heads]`: array(3), then type 4.
                if frame.starts_with(&[0x83, 0x04]) {
                    if let Ok(message::Frame {
                        message: Message::Ack(heads),
                        ..
                    }) = message::decode(&frame)
                    {
                        self.people[p]
                            .acked
                            .extend(heads.into_iter().filter(|(_, h)| h.seq > 0));
                    }
                }
                link.queues[s].push_back(frame);
            }
            while let Some(event) = link.sessions[s].poll_event() {
                match event {
                    SessionEvent::Applied { n_entries, max_hlc } => {
                        self.changes += n_entries as u64;
                        if let Some(hlc) = max_hlc {
                            let _ = self.people[p].clock.observe(hlc, self.now_ms);
                        }
                        changed.push(p);
                    }
                    SessionEvent::RevocationListLearned { .. } => self.changes += 1,
                    SessionEvent::Closed {
                        code,
                        remote,
                        reason,
                    } => {
                        link.dead = true;
                        self.last_close = format!(
                            "{} closed ({}): {code:?}: {reason}",
                            self.people[p].name,
                            if remote { "by the peer" } else { "itself" }
                        );
                        if !remote {
                            *self.report.closes.entry(format!("{code:?}")).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        if link.dead {
            self.links.remove(&key);
        }
        for p in changed {
            self.notify(p)?;
        }
        Ok(())
    }

    /// Tells every session of `p` that its store has new entries.
    fn notify(&mut self, p: usize) -> Result<(), String> {
        let keys: Vec<_> = self
            .links
            .keys()
            .copied()
            .filter(|(i, j)| *i == p || *j == p)
            .collect();
        for key in keys {
            let Some(link) = self.links.get_mut(&key) else {
                continue;
            };
            let s = usize::from(link.ends[1] == p);
            let store = &self.people[p].store;
            if link.sessions[s].on_local_entries(store).is_err() {
                link.dead = true;
            }
            self.pump(key)?;
        }
        Ok(())
    }

    /// Delivers the next frame from side `side` of a link, through the
    /// hostile network when `faults`.
    fn deliver(&mut self, key: (usize, usize), side: usize, faults: bool) -> Result<(), String> {
        let Some(link) = self.links.get_mut(&key) else {
            return Ok(());
        };
        let queue = &mut link.queues[side];
        if queue.is_empty() {
            return Ok(());
        }
        let roll = if faults { self.rng.below(1000) } else { 1000 };
        let frame = match roll {
            0..=14 => {
                queue.pop_front();
                self.report.dropped += 1;
                return Ok(());
            }
            15..=24 => {
                self.report.duplicated += 1;
                queue.front().cloned()
            }
            25..=34 if queue.len() >= 2 => {
                self.report.reordered += 1;
                queue.swap(0, 1);
                queue.pop_front()
            }
            35..=44 => {
                self.report.garbled += 1;
                queue.pop_front().map(|mut f| {
                    let i = self.rng.below(f.len() as u64) as usize;
                    f[i] ^= 1 << self.rng.below(8);
                    f
                })
            }
            _ => queue.pop_front(),
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        self.report.frames += 1;
        let to = 1 - side;
        let p = link.ends[to];
        // Prepared apart, as the QUIC driver does (the same as `handle`).
        let prepared = Session::prepare(&frame);
        if link.sessions[to]
            .handle_prepared(prepared, &mut self.people[p].store, self.now_ms)
            .is_err()
        {
            // A store failure: the session closed itself; the driver drops
            // the connection.
            link.dead = true;
        }
        self.pump(key)
    }

    fn timeouts(&mut self) -> Result<(), String> {
        let keys: Vec<_> = self.links.keys().copied().collect();
        for key in keys {
            if let Some(link) = self.links.get_mut(&key) {
                for s in &mut link.sessions {
                    s.handle_timeout(self.now_ms);
                }
            }
            self.pump(key)?;
        }
        Ok(())
    }
}
