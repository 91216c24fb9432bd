//! What every state of a session shares, and what a session reports: its
//! configuration ([`SessionConfig`]), its events ([`SessionEvent`]) and
//! counters ([`SessionStats`]), the outbox the state handlers write frames
//! and events to, the faults they return, and the context ([`Ctx`]) they
//! are lent with the store.
//!
//! The bottom of the session's files: `session.rs` drives the states in
//! `handshake.rs`, `exchange.rs` and `receive.rs`, which all use this file,
//! and this file uses none of them (so their dependencies point one way).
//! Never does: handle a message, or touch a store.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use sentinel_schema::limits::MAX_FRAME_BYTES;
use sentinel_schema::{AuthorId, DeviceRole, EntryId, Head, Hlc};

use crate::checkpoint::Breach;
use crate::compress::Sealer;
use crate::message::{CloseCode, FrameEncodings, Message};
use crate::reject::RejectReason;
use crate::trust::TrustAnchor;
use crate::verify::Verifier;

/// How a session behaves. [`SessionConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct SessionConfig {
    /// This side's role, sent in Hello.
    pub role: DeviceRole,
    /// Verifies certificates and revocation lists.
    pub trust: Arc<dyn TrustAnchor + Send + Sync>,
    /// Most entries in one batch (1..=[`crate::message::MAX_BATCH_ENTRIES`]).
    pub max_batch_entries: usize,
    /// Largest batch frame, in bytes (at most [`MAX_FRAME_BYTES`]); a
    /// single entry larger than this still travels, alone.
    pub max_batch_bytes: usize,
    /// Most batches sent and not yet acknowledged (at least 1).
    pub max_in_flight: usize,
    /// How long the session waits for a frame, while it expects one,
    /// before it closes with [`CloseCode::Timeout`].
    pub idle_timeout_ms: u64,
    /// Most authors accepted in the peer's heads (its Hello's `n_authors`,
    /// and all its `Heads` frames together); more closes the session with
    /// [`CloseCode::LimitExceeded`]. At most
    /// [`crate::message::MAX_AUTHORS`], the default.
    pub max_authors: usize,
    /// The peer's author id, as its certificate proved (the driver knows
    /// it after the TLS handshake). When the peer is a hub whose
    /// checkpoints the store holds, its heads are checked for truncation.
    pub peer: Option<AuthorId>,
    /// The peer's role, as its verified certificate says (the QUIC driver
    /// sets it after the TLS handshake: `Session::authenticate_peer`).
    /// Every decision about the peer is taken on this role, never on its
    /// Hello: whether it is sent anything (not a sensor), whether its
    /// acknowledgements are a hub's. A Hello that claims another role
    /// closes the session ([`CloseCode::RoleMismatch`]). `None`: the
    /// session refuses to start (`SessionError::PeerNotAuthenticated`).
    pub peer_role: Option<DeviceRole>,
    /// This side's own author id (the key of its own certificate). Its
    /// entries are streamed before the entries it relays for others, so
    /// on a thin link what this device wrote leaves first. `None`: every
    /// author in author order.
    pub own: Option<AuthorId>,
    /// The frame encodings this side announces in its Hello and accepts
    /// (`docs/protocol.md` 2.12). Batches are sent compressed only in an
    /// encoding the peer's Hello announces too; [`FrameEncodings::NONE`]
    /// sends the Hello of a peer that predates encodings.
    pub frame_encodings: FrameEncodings,
}

impl SessionConfig {
    /// Defaults: batches of up to 512 entries and 1 MiB, 4 in flight, a
    /// 30 s idle timeout, up to [`crate::message::MAX_AUTHORS`] authors;
    /// the peer not known yet, and no own author (nothing streamed first).
    pub fn new(role: DeviceRole, trust: Arc<dyn TrustAnchor + Send + Sync>) -> Self {
        SessionConfig {
            role,
            trust,
            max_batch_entries: 512,
            max_batch_bytes: MAX_FRAME_BYTES,
            max_in_flight: 4,
            idle_timeout_ms: 30_000,
            max_authors: crate::message::MAX_AUTHORS,
            peer: None,
            peer_role: None,
            own: None,
            frame_encodings: FrameEncodings::DEFLATE,
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("role", &self.role)
            .field("max_batch_entries", &self.max_batch_entries)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("max_authors", &self.max_authors)
            .field("peer", &self.peer)
            .field("peer_role", &self.peer_role)
            .field("own", &self.own)
            .field("frame_encodings", &self.frame_encodings)
            .finish_non_exhaustive()
    }
}

/// Something the driver (and the node) may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Running totals for this session: entries the peer acknowledged,
    /// entries received from the peer, entries applied to the store.
    Progress {
        sent: u64,
        received: u64,
        applied: u64,
    },
    /// A batch was applied and committed: `n_entries` new entries, the
    /// newest HLC among them (for the local clock). The node refreshes its
    /// views and tells its other sessions ([`crate::Session::on_local_entries`]).
    Applied {
        n_entries: usize,
        max_hlc: Option<Hlc>,
    },
    /// Two different entries of `author` at `seq`: both kept as evidence.
    Fork { author: AuthorId, seq: u64 },
    /// An entry from the peer failed a check and was quarantined; the
    /// reason's code is stable (see `docs/protocol.md` 2.6), `detail` is
    /// for people.
    Quarantined {
        id: EntryId,
        reason: RejectReason,
        detail: String,
    },
    /// A certificate from the peer did not verify and was not stored.
    CertificateRefused { author: AuthorId, reason: String },
    /// Both sides hold everything the other had: the session is live.
    CaughtUp,
    /// What the peer presents contradicts a hub checkpoint the store holds
    /// (see [`crate::checkpoint`]): a truncated hub log, or a fork at an
    /// attested position. Entries at a contradicted position are also
    /// quarantined (`contradicts_checkpoint`).
    CheckpointBreach(Breach),
    /// A newer revocation list was verified and stored.
    RevocationListLearned { number: u64 },
    /// A `revocation` entry was applied. Only hubs may write them, so its
    /// author `by` holds a hub certificate; the session applies it to the
    /// entries it checks from the next batch on, and the driver adds it to
    /// what it enforces elsewhere (handshakes, other sessions: see
    /// `RevocationHandle::add_entry_revocation`).
    RevocationEntryApplied {
        by: AuthorId,
        revocation: sentinel_schema::Revocation,
    },
    /// The peer's committed heads for some authors: what it durably holds.
    /// Emitted for every `Ack` (the authors of the acknowledged batch), and
    /// for the heads the peer presented at the start of the session (its
    /// `Heads` frames, or ours when the digests were equal): entries a
    /// peer already held are never sent, so never acknowledged. Records
    /// with seq 0 (nothing of that author) are left out. `by` is the role
    /// the peer's certificate says ([`SessionConfig::peer_role`]): an
    /// acknowledgement from a hub is a **receipt**, which the node keeps
    /// (its outbox is what no hub has acknowledged). The receiver checks the ids against its own log: a
    /// head it does not hold, or another entry at that seq, covers nothing.
    Acknowledged {
        by: DeviceRole,
        heads: Vec<(AuthorId, Head)>,
    },
    /// How much of the catch-up is left, as the heads exchange showed it:
    /// entries this side has still to send (planned and not yet
    /// acknowledged) and to receive (where the peer's heads are ahead of
    /// this side's, less what has arrived), and the bytes of the frames
    /// this side has sent (handed to the driver) and received so far.
    /// Emitted once the heads are known, before any entry moves, and with
    /// every [`SessionEvent::Progress`] after that. An estimate: entries
    /// written during the session, and entries held back or refused, are
    /// not in it, and neither count goes below 0. With `Progress`'s
    /// `sent + received` as what is done, `done + to_send + to_receive` is
    /// the whole (see [`crate::progress::Eta`]).
    Remaining {
        to_send: u64,
        to_receive: u64,
        bytes_sent: u64,
        bytes_received: u64,
    },
    /// The session ended; `remote` when the peer closed it.
    Closed {
        code: CloseCode,
        reason: String,
        remote: bool,
    },
}

/// Counters for one session. Bytes are whole frames as they go on the
/// wire: a compressed frame counts its compressed bytes (the 4-byte length
/// prefix of the stream, and QUIC's and TLS's own overhead, are not
/// counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub frames_received: u64,
    pub bytes_received: u64,
    /// Entries put in batches to the peer.
    pub entries_sent: u64,
    /// Entries in batches the peer acknowledged.
    pub entries_acked: u64,
    /// Entries received in batches from the peer.
    pub entries_received: u64,
    /// Entries the store applied (new to it).
    pub entries_applied: u64,
    /// Entries received that the store already held.
    pub duplicates: u64,
    /// Entries received and quarantined (by the session or the store).
    pub entries_quarantined: u64,
    /// Entries received after a refused entry of the same author: not
    /// applied, not quarantined, not acknowledged (they cannot link).
    pub entries_skipped: u64,
}

/// A peer or local failure while handling a frame.
pub(crate) enum Fault {
    /// The peer broke the protocol: close with this code and reason.
    Peer(CloseCode, String),
    /// The local store failed.
    Store(Box<dyn Error + Send + Sync>),
}

pub(crate) fn store_fault<E: Error + Send + Sync + 'static>(e: E) -> Fault {
    Fault::Store(Box::new(e))
}

/// Frames and events waiting for the driver.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<SessionEvent>,
    next_number: u64,
    pub(crate) stats: SessionStats,
    /// Entries to send and to receive as the heads exchange planned them
    /// (for [`SessionEvent::Remaining`]); `None` before the heads are known.
    planned: Option<Planned>,
    /// Compresses frames once both Hellos announced an encoding.
    sealer: Option<Sealer>,
}

/// The catch-up as planned when the heads were known, and the counters
/// at that moment.
#[derive(Debug, Clone, Copy)]
struct Planned {
    to_send: u64,
    to_receive: u64,
    acked_before: u64,
    received_before: u64,
}

impl Outbox {
    pub(crate) fn send(&mut self, message: &Message) {
        self.send_with(|number| message.encode(number));
    }

    /// Queues the frame `encode` builds for the next frame number.
    pub(crate) fn send_with(&mut self, encode: impl FnOnce(u64) -> Vec<u8>) {
        let mut frame = encode(self.next_number);
        if let Some(sealer) = &mut self.sealer {
            frame = sealer.seal(frame);
        }
        self.next_number += 1;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        self.transmit.push_back(frame);
    }

    /// Frames queued from now on are sealed by `sealer` (where that makes
    /// them smaller: [`Sealer::seal`]).
    pub(crate) fn seal_with(&mut self, sealer: Sealer) {
        self.sealer = Some(sealer);
    }

    pub(crate) fn event(&mut self, event: SessionEvent) {
        self.events.push_back(event);
    }

    /// The next frame for the driver to send.
    pub(crate) fn pop_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the driver.
    pub(crate) fn pop_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    pub(crate) fn progress(&mut self) {
        let s = self.stats;
        self.event(SessionEvent::Progress {
            sent: s.entries_acked,
            received: s.entries_received,
            applied: s.entries_applied,
        });
        self.remaining();
    }

    /// The heads are known: `to_send` entries are planned to the peer and
    /// `to_receive` are expected from it. Says so ([`SessionEvent::Remaining`]).
    pub(crate) fn plan(&mut self, to_send: u64, to_receive: u64) {
        self.planned = Some(Planned {
            to_send,
            to_receive,
            acked_before: self.stats.entries_acked,
            received_before: self.stats.entries_received,
        });
        self.remaining();
    }

    fn remaining(&mut self) {
        let Some(p) = self.planned else {
            return;
        };
        let s = self.stats;
        let acked = s.entries_acked.saturating_sub(p.acked_before);
        let received = s.entries_received.saturating_sub(p.received_before);
        self.event(SessionEvent::Remaining {
            to_send: p.to_send.saturating_sub(acked),
            to_receive: p.to_receive.saturating_sub(received),
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
        });
    }
}

/// What a state handler gets besides the store.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a SessionConfig,
    pub(crate) out: &'a mut Outbox,
    pub(crate) verifier: &'a mut Verifier,
    pub(crate) now_ms: u64,
    /// The role the peer's certificate says ([`SessionConfig::peer_role`]).
    pub(crate) peer_role: DeviceRole,
}
