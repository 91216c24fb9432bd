//! The end of a simulation: heal, sync until nothing changes, and check.

use std::collections::BTreeMap;

use sentinel_schema::{AuthorId, Head};

use super::actor::{Kind, ROGUE_LAST_VALID};
use super::World;
use crate::reject::RejectReason;
use crate::store::SyncStore;

/// Clean rounds allowed before the run counts as not converging. Every
/// pair meets in each round, so two or three rounds normally suffice.
const MAX_ROUNDS: usize = 8;

impl World {
    /// Heals every partition, makes sure the forbidden writes happened,
    /// then runs clean sessions between every allowed pair, round after
    /// round, until a round changes nothing. Returns the rounds run.
    pub(super) fn settle(&mut self) -> Result<usize, String> {
        self.links.clear();
        self.group.iter_mut().for_each(|g| *g = 0);
        let now = self.now_ms;
        for p in &mut self.people {
            p.store.clear_injected_failure();
            match p.kind {
                Kind::Sensor if p.bad_seq.is_none() => {
                    p.write_forbidden_change(now);
                    p.write(&mut self.rng, now);
                }
                Kind::Rogue => {
                    while p.store.log(&p.author).len() as u64 <= ROGUE_LAST_VALID + 1 {
                        p.write_event(&mut self.rng, now);
                    }
                }
                _ => {}
            }
        }
        let n = self.people.len();
        for round in 1..=MAX_ROUNDS {
            self.changes = 0;
            for i in 0..n {
                for j in i + 1..n {
                    if self.allowed(i, j) {
                        self.clean_session(i, j)?;
                    }
                }
            }
            if self.changes == 0 {
                return Ok(round);
            }
        }
        Err(format!("still changing after {MAX_ROUNDS} clean rounds"))
    }

    /// One session over a perfect link, to the end; it must go live.
    fn clean_session(&mut self, i: usize, j: usize) -> Result<(), String> {
        let key = (i, j);
        self.connect(i, j)?;
        loop {
            let Some(link) = self.links.get(&key) else {
                return Err(format!(
                    "a clean session between {} and {} closed: {}",
                    self.people[i].name, self.people[j].name, self.last_close
                ));
            };
            let Some(side) = (0..2).find(|s| !link.queues[*s].is_empty()) else {
                break;
            };
            self.deliver(key, side, false)?;
        }
        let link = self.links.remove(&key).expect("checked above");
        if !link.sessions.iter().all(|s| s.is_live()) {
            return Err(format!(
                "a clean session between {} and {} stopped in {} / {}",
                self.people[i].name,
                self.people[j].name,
                link.sessions[0].state_name(),
                link.sessions[1].state_name()
            ));
        }
        Ok(())
    }

    /// Every property the run must end with.
    pub(super) fn check(&mut self) -> Result<(), String> {
        let honest: Vec<usize> = (0..self.people.len())
            .filter(|p| self.people[*p].is_honest())
            .collect();
        let first = &self.people[honest[0]];
        let heads = first.store.heads().map_err(|e| e.to_string())?;
        let views = first.store.event_views();
        for &p in &honest[1..] {
            let other = &self.people[p];
            if other.store.heads().map_err(|e| e.to_string())? != heads {
                return Err(format!(
                    "{} and {} hold different heads",
                    first.name, other.name
                ));
            }
            if other.store.event_views() != views {
                return Err(format!(
                    "{} and {} show different events",
                    first.name, other.name
                ));
            }
        }
        for (event, view) in &views {
            if let Err(e) = view {
                return Err(format!("event {event} does not materialise: {e}"));
            }
        }

        // What each author wrote, as every honest store must hold it.
        let mut expected: BTreeMap<AuthorId, u64> = BTreeMap::new();
        for p in &self.people {
            let written = p.store.log(&p.author).len() as u64;
            let kept = match p.kind {
                Kind::Honest | Kind::Courier { .. } => written,
                Kind::Sensor => p.bad_seq.map_or(written, |bad| bad - 1),
                Kind::Rogue => written.min(ROGUE_LAST_VALID),
            };
            expected.insert(p.author, kept);
        }
        for (author, kept) in &expected {
            let held = heads.get(author).map_or(0, |h: Head| h.seq);
            if held != *kept {
                return Err(format!(
                    "honest stores hold {held} entries of {author}, expected {kept}"
                ));
            }
        }

        // No acknowledged entry was lost, anywhere.
        for p in &self.people {
            for (author, head) in &p.acked {
                let log = p.store.log(author);
                let held = usize::try_from(head.seq - 1).ok().and_then(|i| log.get(i));
                if held.map(|e| e.id()) != Some(head.id) {
                    return Err(format!(
                        "{} acknowledged {author} #{} and lost it",
                        p.name, head.seq
                    ));
                }
            }
        }

        // The forbidden entries were refused where they arrived, and each
        // honest store keeps its log and quarantine apart, and no fork.
        let sensor = self
            .people
            .iter()
            .find(|p| p.kind == Kind::Sensor)
            .expect("a sensor");
        let rogue = self
            .people
            .iter()
            .find(|p| p.kind == Kind::Rogue)
            .expect("a rogue");
        let refused = |author: AuthorId, reason: RejectReason| {
            honest.iter().any(|&p| {
                self.people[p]
                    .store
                    .quarantined()
                    .any(|q| q.entry.author() == author && q.reason == reason)
            })
        };
        if !refused(sensor.author, RejectReason::RoleNotAllowed) {
            return Err("no store quarantined the sensor's event change".into());
        }
        if !refused(rogue.author, RejectReason::Revoked) {
            return Err("no store quarantined the rogue's revoked entries".into());
        }
        for &p in &honest {
            let store = &self.people[p].store;
            if let Some(f) = store.forks().first() {
                return Err(format!(
                    "{} recorded a fork of {}",
                    self.people[p].name,
                    f.entry.author()
                ));
            }
            for q in store.quarantined() {
                let log = store.log(&q.entry.author());
                if log.iter().any(|e| e.id() == q.entry.id()) {
                    return Err(format!(
                        "{} holds an entry in both log and quarantine",
                        self.people[p].name
                    ));
                }
            }
        }

        if let Some(list) = &self.second_list {
            for p in &self.people {
                if p.store
                    .revocation_list()
                    .map_err(|e| e.to_string())?
                    .as_ref()
                    != Some(list)
                {
                    return Err(format!(
                        "{} did not learn the second revocation list",
                        p.name
                    ));
                }
            }
        }
        self.report.n_entries = heads.n_entries() as usize;
        self.report.n_events = views.len();
        Ok(())
    }
}
