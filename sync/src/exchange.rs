//! Both directions of a session once heads are known: streaming what the
//! peer lacks (this file) and applying what it sends (`receive.rs`).
//!
//! Sending keeps, per author, a cursor: the highest seq the peer holds or
//! has been sent in this session. Batches are cut from the store by
//! cursor, at most `max_in_flight` of them unacknowledged. An `Ack` shows
//! the peer's committed heads: if one is below what was sent, the peer
//! refused an entry of that author, and the rest of that author's chain is
//! held back for this session (it could not link). This side's own author
//! ([`crate::SessionConfig::own`]) is streamed before the authors it
//! relays, each author's entries in seq order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sentinel_schema::{AuthorId, DeviceRole, Head, Heads, SignedEntry};

use crate::context::{store_fault, Ctx, Fault, SessionEvent};
use crate::message::{
    encode_entries, entries_frame_base, entry_wire_len, CloseCode, Message,
    MAX_CERTIFICATES_PER_MESSAGE,
};
use crate::store::SyncStore;
use crate::verify::CheckedBatch;

/// Work waiting to be put in batches, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    /// Send the author's entries after the cursor, until there are none.
    Stream(AuthorId),
    /// Send our entry at this seq, which differs from the peer's head
    /// there: evidence of a fork, for the peer to record.
    Evidence(AuthorId, u64),
}

/// A batch sent and not yet acknowledged.
#[derive(Debug)]
struct SentBatch {
    /// Per author in the batch, the highest seq it carried.
    through: BTreeMap<AuthorId, u64>,
    n_entries: usize,
}

#[derive(Debug)]
pub(crate) struct Exchange {
    /// False when the peer's certificate is a sensor's: sensors are sent
    /// nothing.
    send_to_peer: bool,
    /// Per author: the highest seq the peer holds or has been sent.
    cursor: BTreeMap<AuthorId, u64>,
    /// Authors the peer has a certificate for, as far as we know.
    certified: BTreeSet<AuthorId>,
    plan: VecDeque<Planned>,
    /// Authors with a `Planned::Stream` in `plan`.
    planned: BTreeSet<AuthorId>,
    /// Authors not streamed any more in this session: they fork, or the
    /// peer refused one of their entries.
    held_back: BTreeSet<AuthorId>,
    in_flight: VecDeque<SentBatch>,
    caught_up_sent: bool,
    pub(crate) peer_caught_up: bool,
    /// Receiving: per author, the lowest seq refused in this session.
    /// Later entries of that author cannot link and are skipped.
    pub(crate) refused_from: BTreeMap<AuthorId, u64>,
}

impl Exchange {
    fn new(send_to_peer: bool) -> Exchange {
        Exchange {
            send_to_peer,
            cursor: BTreeMap::new(),
            certified: BTreeSet::new(),
            plan: VecDeque::new(),
            planned: BTreeSet::new(),
            held_back: BTreeSet::new(),
            in_flight: VecDeque::new(),
            caught_up_sent: false,
            peer_caught_up: false,
            refused_from: BTreeMap::new(),
        }
    }

    /// Equal digests: the peer holds exactly `heads`, and both sides are
    /// caught up without a word more.
    pub(crate) fn in_sync(send_to_peer: bool, heads: &Heads) -> Exchange {
        let mut x = Exchange::new(send_to_peer);
        for (author, head) in heads.iter() {
            x.cursor.insert(*author, head.seq);
            x.certified.insert(*author);
        }
        x.caught_up_sent = true;
        x.peer_caught_up = true;
        x
    }

    /// Plans what the peer lacks, given its heads. Where the peer's head
    /// is not in our chain, the author forks: we send our entry at that
    /// seq as evidence and nothing more of that author. Our own entries
    /// ([`crate::SessionConfig::own`]) go first. Tells the outbox how many
    /// entries are planned each way ([`SessionEvent::Remaining`]).
    pub(crate) fn from_heads<S: SyncStore>(
        send_to_peer: bool,
        peer: &[(AuthorId, Head)],
        store: &S,
        ctx: &mut Ctx<'_>,
    ) -> Result<Exchange, Fault> {
        let mut x = Exchange::new(send_to_peer);
        for (author, head) in peer {
            x.cursor.insert(*author, head.seq);
            x.certified.insert(*author);
        }
        let ours = store.heads().map_err(store_fault)?;
        // The peer sends a sensor nothing (by this side's certificate,
        // which its Hello's role must match).
        let to_receive: u64 = if ctx.config.role == DeviceRole::Sensor {
            0
        } else {
            peer.iter()
                .map(|(author, theirs)| {
                    let our = ours.get(author).map_or(0, |h| h.seq);
                    theirs.seq.saturating_sub(our)
                })
                .sum()
        };
        if !send_to_peer {
            ctx.out.plan(0, to_receive);
            return Ok(x);
        }
        let mut to_send = 0u64;
        for (author, our) in ours.iter() {
            let theirs = peer
                .binary_search_by(|(a, _)| a.cmp(author))
                .ok()
                .map(|i| peer[i].1);
            let Some(theirs) = theirs else {
                x.plan_stream(*author);
                to_send += our.seq;
                continue;
            };
            if our.seq < theirs.seq {
                continue;
            }
            let ours_there = if our.seq == theirs.seq {
                Some(our.id)
            } else {
                store
                    .entries_after(author, theirs.seq - 1, 1, usize::MAX)
                    .map_err(store_fault)?
                    .first()
                    .filter(|e| e.seq() == theirs.seq)
                    .map(SignedEntry::id)
            };
            match ours_there {
                Some(id) if id == theirs.id && our.seq > theirs.seq => {
                    x.plan_stream(*author);
                    to_send += our.seq - theirs.seq;
                }
                // The peer holds exactly our chain.
                Some(id) if id == theirs.id => {}
                Some(_) => {
                    ctx.out.event(SessionEvent::Fork {
                        author: *author,
                        seq: theirs.seq,
                    });
                    x.held_back.insert(*author);
                    x.plan.push_back(Planned::Evidence(*author, theirs.seq));
                    to_send += 1;
                }
                // The store did not return the entry below its own head:
                // nothing sensible to send for this author.
                None => {}
            }
        }
        x.own_first(ctx);
        ctx.out.plan(to_send, to_receive);
        Ok(x)
    }

    /// Moves the stream of this side's own author to the front of the
    /// plan: what this device wrote goes before what it relays. Each
    /// author's entries still go in seq order (the cursor is per author).
    fn own_first(&mut self, ctx: &Ctx<'_>) {
        let Some(own) = ctx.config.own else {
            return;
        };
        if let Some(i) = self.plan.iter().position(|p| *p == Planned::Stream(own)) {
            if let Some(item) = self.plan.remove(i) {
                self.plan.push_front(item);
            }
        }
    }

    fn plan_stream(&mut self, author: AuthorId) {
        if self.planned.insert(author) {
            self.plan.push_back(Planned::Stream(author));
        }
    }

    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Both sides have everything the other had: our stream is sent and
    /// acknowledged, and the peer said it is done.
    pub(crate) fn is_caught_up(&self) -> bool {
        self.caught_up_sent
            && self.peer_caught_up
            && self.plan.is_empty()
            && self.in_flight.is_empty()
    }

    /// The messages an exchange handles (in `Reconciling` and `Live`).
    pub(crate) fn accepts(message: &Message) -> bool {
        matches!(
            message,
            Message::Certificates(_) | Message::Entries(_) | Message::Ack(_) | Message::CaughtUp
        )
    }

    /// Handles one message; `checked` is an `Entries` message's batch if
    /// it was checked ahead ([`CheckedBatch::check`]), else it is checked
    /// here.
    pub(crate) fn on_message<S: SyncStore>(
        &mut self,
        message: Message,
        checked: Option<CheckedBatch>,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        match message {
            Message::Certificates(certs) => self.on_certificates(certs, store, ctx),
            Message::Entries(raw) => {
                let batch = checked.unwrap_or_else(|| CheckedBatch::check(raw));
                self.on_entries(batch, store, ctx)
            }
            Message::Ack(heads) => {
                self.on_ack(heads, ctx)?;
                self.fill(store, ctx)
            }
            Message::CaughtUp if !self.peer_caught_up => {
                self.peer_caught_up = true;
                Ok(())
            }
            other => Err(Fault::Peer(
                CloseCode::UnexpectedMessage,
                format!("{} is not expected here", other.name()),
            )),
        }
    }

    /// Plans every author whose head in the store is past the cursor, and
    /// sends what the window allows.
    pub(crate) fn push_new<S: SyncStore>(
        &mut self,
        store: &S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        if !self.send_to_peer {
            return Ok(());
        }
        let heads = store.heads().map_err(store_fault)?;
        for (author, head) in heads.iter() {
            let behind = self.cursor.get(author).is_none_or(|c| *c < head.seq);
            if behind && !self.held_back.contains(author) {
                self.plan_stream(*author);
            }
        }
        self.own_first(ctx);
        self.fill(store, ctx)
    }

    /// Sends batches while the window has room, then `CaughtUp` once the
    /// plan is done for the first time.
    pub(crate) fn fill<S: SyncStore>(&mut self, store: &S, ctx: &mut Ctx<'_>) -> Result<(), Fault> {
        while self.in_flight.len() < ctx.config.max_in_flight.max(1) {
            let batch = self.next_batch(store, ctx)?;
            if batch.is_empty() {
                break;
            }
            self.send_batch(batch, store, ctx)?;
        }
        if self.plan.is_empty() && !self.caught_up_sent {
            self.caught_up_sent = true;
            ctx.out.send(&Message::CaughtUp);
        }
        Ok(())
    }

    /// Cuts the next batch from the plan: at most `max_batch_entries`, and
    /// a frame of at most `max_batch_bytes` unless it holds one entry.
    fn next_batch<S: SyncStore>(
        &mut self,
        store: &S,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<SignedEntry>, Fault> {
        let max_entries = ctx
            .config
            .max_batch_entries
            .clamp(1, crate::message::MAX_BATCH_ENTRIES);
        // The frame's own heads, at their largest.
        let budget = ctx
            .config
            .max_batch_bytes
            .saturating_sub(entries_frame_base(u64::MAX, max_entries));
        let mut batch: Vec<SignedEntry> = Vec::new();
        let mut size = 0usize;
        while batch.len() < max_entries {
            let Some(item) = self.plan.front().copied() else {
                break;
            };
            let (author, after, limit) = match item {
                Planned::Stream(a) if self.held_back.contains(&a) => {
                    self.pop_plan();
                    continue;
                }
                Planned::Stream(a) => (
                    a,
                    self.cursor.get(&a).copied().unwrap_or(0),
                    max_entries - batch.len(),
                ),
                Planned::Evidence(a, seq) => (a, seq - 1, 1),
            };
            let got = store
                .entries_after(&author, after, limit, budget.saturating_sub(size))
                .map_err(store_fault)?;
            let (mut full, mut pushed, mut done) = (false, false, got.is_empty());
            for (next, e) in (after + 1..).zip(got) {
                if e.author() != author || e.seq() != next {
                    // The store broke its contract; stop this author.
                    done = true;
                    break;
                }
                let w = entry_wire_len(e.as_bytes().len());
                if !batch.is_empty() && size + w > budget {
                    full = true;
                    break;
                }
                size += w;
                pushed = true;
                if let Planned::Stream(_) = item {
                    self.cursor.insert(author, e.seq());
                }
                batch.push(e);
                if batch.len() >= max_entries {
                    full = true;
                    break;
                }
            }
            let evidence_done = matches!(item, Planned::Evidence(..)) && (pushed || !full);
            if done || evidence_done {
                self.pop_plan();
            }
            if full {
                break;
            }
        }
        Ok(batch)
    }

    fn pop_plan(&mut self) {
        if let Some(Planned::Stream(a)) = self.plan.pop_front() {
            self.planned.remove(&a);
        }
    }

    /// Sends the certificates the peer may lack, then the batch.
    fn send_batch<S: SyncStore>(
        &mut self,
        batch: Vec<SignedEntry>,
        store: &S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        let mut through: BTreeMap<AuthorId, u64> = BTreeMap::new();
        for e in &batch {
            let t = through.entry(e.author()).or_insert(0);
            *t = (*t).max(e.seq());
        }
        let mut certs: Vec<(AuthorId, Vec<u8>)> = Vec::new();
        let mut certs_bytes = 0usize;
        for author in through.keys() {
            if !self.certified.insert(*author) {
                continue;
            }
            let Some(der) = store.certificate(author).map_err(store_fault)? else {
                continue;
            };
            let w = der.len() + 40;
            if !certs.is_empty()
                && (certs.len() == MAX_CERTIFICATES_PER_MESSAGE
                    || certs_bytes + w > ctx.config.max_batch_bytes)
            {
                ctx.out
                    .send(&Message::Certificates(std::mem::take(&mut certs)));
                certs_bytes = 0;
            }
            certs_bytes += w;
            certs.push((*author, der));
        }
        if !certs.is_empty() {
            ctx.out.send(&Message::Certificates(certs));
        }
        ctx.out
            .send_with(|number| encode_entries(number, batch.iter().map(SignedEntry::as_bytes)));
        ctx.out.stats.entries_sent += batch.len() as u64;
        self.in_flight.push_back(SentBatch {
            through,
            n_entries: batch.len(),
        });
        Ok(())
    }

    /// The peer's committed heads for the oldest batch in flight.
    fn on_ack(&mut self, heads: Vec<(AuthorId, Head)>, ctx: &mut Ctx<'_>) -> Result<(), Fault> {
        let Some(batch) = self.in_flight.pop_front() else {
            return Err(Fault::Peer(
                CloseCode::BadAck,
                "Ack with no batch in flight".into(),
            ));
        };
        if heads.len() != batch.through.len()
            || heads
                .iter()
                .zip(&batch.through)
                .any(|((a, _), (b, _))| a != b)
        {
            return Err(Fault::Peer(
                CloseCode::BadAck,
                "Ack does not name exactly the authors of the batch".into(),
            ));
        }
        for ((author, head), (_, through)) in heads.iter().zip(&batch.through) {
            if head.seq < *through {
                self.held_back.insert(*author);
            }
            let c = self.cursor.entry(*author).or_insert(0);
            *c = (*c).max(head.seq);
        }
        ctx.out.stats.entries_acked += batch.n_entries as u64;
        ctx.out.progress();
        let held: Vec<(AuthorId, Head)> = heads.into_iter().filter(|(_, h)| h.seq > 0).collect();
        if !held.is_empty() {
            ctx.out.event(SessionEvent::Acknowledged {
                by: ctx.peer_role,
                heads: held,
            });
        }
        Ok(())
    }

    /// After receiving entries from the peer: it holds them, so they are
    /// never sent back, and it holds their authors' certificates.
    pub(crate) fn peer_holds(&mut self, author: AuthorId, seq: u64) {
        let c = self.cursor.entry(author).or_insert(0);
        *c = (*c).max(seq);
        self.certified.insert(author);
    }
}
