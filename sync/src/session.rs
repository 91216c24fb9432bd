//! The session state machine, driven like `quinn-proto`: frames in through
//! [`Session::handle`], frames out through [`Session::poll_transmit`],
//! what happened through [`Session::poll_event`]; time is an argument and
//! the store is lent for each call. Both peers run the same machine.
//!
//! ```text
//!            start: send Hello
//!  Idle ─────────────────────────▶ ExpectHello
//!                                     │ peer's Hello
//!          equal digests ┌────────────┴──────────────┐ digests differ:
//!         (1 round trip) │                           │ send Heads
//!                        │                           ▼
//!                        │                      ExpectHeads ◀─┐ Heads (more)
//!                        │                           │ ───────┘ / RevocationList
//!                        │                           │ last Heads: plan, stream
//!                        │                           ▼
//!                        │                      Reconciling ◀─┐ Certificates, Entries → Ack,
//!                        │                           │ ───────┘ Ack → more batches, CaughtUp
//!                        │                           │ both sides caught up
//!                        ▼                           ▼
//!                       Live ◀──────────────────────────┐ entries pushed as they are
//!                        └──────────────────────────────┘ written (on_local_entries)
//!
//!  any state ── Close, bad frame, timeout, store failure ──▶ Closed
//! ```
//!
//! The session expects a transport that delivers frames in order and
//! exactly once (one QUIC stream). Every frame carries its number in the
//! sender's stream, so a frame that was dropped, duplicated or reordered
//! is detected at the next frame and the session closes with
//! [`CloseCode::OutOfOrder`]; a frame lost at the end is caught by the
//! idle timeout. The session does not repair: the driver starts a new
//! session, which resumes from the receiver's committed heads.
//!
//! This file owns the state and the transition table (`dispatch`); the
//! handlers are the states' own (`handshake.rs`, `exchange.rs`,
//! `receive.rs`), the checks `verify.rs`'s, and what they all share (the
//! configuration, events, outbox, faults) `context.rs`'s. Dependencies
//! point one way: this file → the states → the checks and the context.

use std::error::Error;
use std::fmt;

use sentinel_schema::{AuthorId, DeviceRole, Head};

use crate::checkpoint::Attested;
use crate::compress;
use crate::context::{Ctx, Fault, Outbox};
use crate::exchange::Exchange;
use crate::handshake::{ExpectHeads, ExpectHello, Step};
use crate::message::{
    self, CloseCode, Frame, FrameEncodings, Hello, Message, MessageError, PROTOCOL_VERSION,
};
use crate::receive::learn_revocation_list;
use crate::store::SyncStore;
use crate::trust::{AuthorInfo, Revocations};
use crate::verify::CheckedBatch;
use crate::verify::Verifier;

pub use crate::context::{SessionConfig, SessionEvent, SessionStats};

/// Why a call on the session failed. Faults of the peer are not errors:
/// they close the session (see [`SessionEvent::Closed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `handle`, `handle_timeout` or `on_local_entries` before `start`.
    #[error("the session has not been started")]
    NotStarted,
    /// `start` was called twice.
    #[error("the session was already started")]
    AlreadyStarted,
    /// The local store failed; the session closed itself
    /// ([`CloseCode::StoreFailed`]).
    #[error("store: {0}")]
    Store(#[source] Box<dyn Error + Send + Sync>),
    /// The revocation list in the local store does not verify: the local
    /// trust state is broken, and syncing would apply the wrong list.
    #[error("the local revocation list does not verify: {0}")]
    LocalRevocationList(String),
    /// `start` without the peer's role ([`SessionConfig::peer_role`]): a
    /// session decides what to send on the peer's certificate, so it
    /// does not run without one.
    #[error("the peer's certificate role is not known: the session does not start")]
    PeerNotAuthenticated,
    /// The certificate the peer presented does not verify against the
    /// trust anchor ([`Session::authenticate_peer`]).
    #[error("the peer's certificate: {0}")]
    PeerCertificate(String),
}

/// A frame from the peer made ready by [`Session::prepare`], for
/// [`Session::handle_prepared`]. It can be sent to another thread.
#[derive(Debug)]
pub struct Prepared {
    /// The frame's length on the wire.
    len: usize,
    /// The encoding of the envelope it came in, if it was encoded.
    encoding: Option<u64>,
    frame: Result<Frame, MessageError>,
    /// An `Entries` frame's batch, decoded and signature-checked (its
    /// message keeps an empty list).
    checked: Option<CheckedBatch>,
}

/// Where a session is. Each handler consumes its state and returns the
/// next, so a message can only be handled where it is allowed.
enum State {
    /// Created; `start` has not run yet.
    Idle,
    /// Our Hello is sent; waiting for the peer's.
    ExpectHello(Box<ExpectHello>),
    /// Digests differ and our heads are sent; collecting the peer's heads
    /// (its newer revocation list may come first).
    ExpectHeads(Box<ExpectHeads>),
    /// Both heads known: streaming what the peer lacks, applying and
    /// acknowledging what it sends, until both sides are caught up.
    Reconciling(Box<Exchange>),
    /// Caught up both ways: entries written from now on are pushed live.
    Live(Box<Exchange>),
    /// Ended; frames are neither sent nor accepted any more.
    Closed,
}

impl From<Step> for State {
    fn from(step: Step) -> State {
        match step {
            Step::ExpectHeads(s) => State::ExpectHeads(s),
            Step::Reconciling(x) => State::Reconciling(x),
            Step::Live(x) => State::Live(x),
        }
    }
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::ExpectHello(_) => "ExpectHello",
            State::ExpectHeads(_) => "ExpectHeads",
            State::Reconciling(_) => "Reconciling",
            State::Live(_) => "Live",
            State::Closed => "Closed",
        }
    }
}

/// One sync session with one peer.
pub struct Session {
    config: SessionConfig,
    state: State,
    out: Outbox,
    verifier: Verifier,
    /// The number the peer's next frame must carry.
    expected_number: u64,
    /// The heads digest our Hello carried.
    hello_digest: [u8; 32],
    last_heard_ms: u64,
    closed: Option<(CloseCode, String)>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state.name())
            .field("stats", &self.out.stats)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(config: SessionConfig) -> Session {
        Session {
            config,
            state: State::Idle,
            out: Outbox::default(),
            verifier: Verifier::default(),
            expected_number: 0,
            hello_digest: [0; 32],
            last_heard_ms: 0,
            closed: None,
        }
    }

    /// Tells the session who the peer is from the certificate it presented
    /// in the TLS handshake (DER), verified against the trust anchor: its
    /// author becomes [`SessionConfig::peer`] and its role
    /// [`SessionConfig::peer_role`], whatever the session was configured
    /// with. The QUIC driver calls it before [`Session::start`].
    pub fn authenticate_peer(&mut self, der: &[u8]) -> Result<AuthorInfo, SessionError> {
        if !matches!(self.state, State::Idle) {
            return Err(SessionError::AlreadyStarted);
        }
        let info = self
            .config
            .trust
            .verify_certificate(der)
            .map_err(SessionError::PeerCertificate)?;
        self.config.peer = Some(info.author);
        self.config.peer_role = Some(info.role);
        Ok(info)
    }

    /// Reads the store's heads and revocation list and sends Hello. The
    /// peer's role must be known ([`SessionConfig::peer_role`], or
    /// [`Session::authenticate_peer`]).
    pub fn start<S: SyncStore>(&mut self, store: &S, now_ms: u64) -> Result<(), SessionError> {
        if !matches!(self.state, State::Idle) {
            return Err(SessionError::AlreadyStarted);
        }
        if self.config.peer_role.is_none() {
            return Err(SessionError::PeerNotAuthenticated);
        }
        self.last_heard_ms = now_ms;
        let read = store
            .revocation_list()
            .and_then(|list| Ok((list, store.heads()?, store.attestations()?)));
        let (list, heads, attestations) = match read {
            Ok(x) => x,
            Err(e) => {
                self.fail(CloseCode::StoreFailed, e.to_string());
                return Err(SessionError::Store(Box::new(e)));
            }
        };
        let revocations = match list.map(|bytes| self.config.trust.verify_revocation_list(&bytes)) {
            None => Revocations::default(),
            Some(Ok(revocations)) => revocations,
            Some(Err(why)) => {
                self.fail(
                    CloseCode::StoreFailed,
                    format!("local revocation list: {why}"),
                );
                return Err(SessionError::LocalRevocationList(why));
            }
        };
        self.hello_digest = heads.digest();
        self.out.send(&Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            role: self.config.role,
            heads_digest: self.hello_digest,
            n_authors: heads.n_authors() as u64,
            n_entries: heads.n_entries(),
            revocation_number: revocations.number,
            frame_encodings: self.config.frame_encodings,
        }));
        self.verifier.revocations = revocations;
        self.verifier.attested = Attested::new(attestations);
        self.state = State::ExpectHello(Box::new(ExpectHello { heads }));
        Ok(())
    }

    /// Handles one frame from the peer. A frame that breaks the protocol
    /// closes the session (an event says why); only local failures are
    /// errors. Frames that arrive after the session closed are ignored.
    ///
    /// The same as [`Session::handle_prepared`] of [`Session::prepare`].
    pub fn handle<S: SyncStore>(
        &mut self,
        frame: &[u8],
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        match self.state {
            State::Idle => Err(SessionError::NotStarted),
            State::Closed => Ok(()),
            _ => self.handle_prepared(Session::prepare(frame), store, now_ms),
        }
    }

    /// The part of handling a frame that needs no session and no store:
    /// decoding it and, for a batch of entries, decoding each entry and
    /// verifying the signatures (checks 1 and 2 of `receive.rs`). Pure, so
    /// a driver may prepare the next frames on another thread while
    /// [`Session::handle_prepared`] applies this one; frames must still
    /// reach `handle_prepared` in the order they arrived.
    pub fn prepare(frame: &[u8]) -> Prepared {
        // Opened here, on the preparing thread, in any encoding this build
        // knows; `handle_prepared` refuses one this side did not announce.
        let encoding = compress::encoding_of(frame);
        let mut decoded =
            compress::open(frame, FrameEncodings::DEFLATE).and_then(|f| message::decode(&f));
        let checked = match &mut decoded {
            Ok(Frame {
                message: Message::Entries(raw),
                ..
            }) => Some(CheckedBatch::check(std::mem::take(raw))),
            _ => None,
        };
        Prepared {
            len: frame.len(),
            encoding,
            frame: decoded,
            checked,
        }
    }

    /// Handles one frame made ready by [`Session::prepare`]: the checks
    /// that need the session's state and the store, then the apply (see
    /// [`Session::handle`]).
    pub fn handle_prepared<S: SyncStore>(
        &mut self,
        prepared: Prepared,
        store: &mut S,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        match self.state {
            State::Idle => return Err(SessionError::NotStarted),
            State::Closed => return Ok(()),
            _ => {}
        }
        let Prepared {
            len,
            encoding,
            frame,
            checked,
        } = prepared;
        self.last_heard_ms = now_ms;
        self.out.stats.frames_received += 1;
        // Stats count the bytes as they came (compressed, when encoded).
        self.out.stats.bytes_received += len as u64;
        // An envelope (opened by `prepare`) counts only in an encoding this
        // side announced, so never as the peer's Hello.
        let accepted = match self.state {
            State::ExpectHello(_) => FrameEncodings::NONE,
            _ => self.config.frame_encodings,
        };
        let frame = match encoding {
            Some(e) if !accepted.contains(e) => Err(compress::unannounced(e)),
            _ => frame,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                self.fail(e.close_code(), e.to_string());
                return Ok(());
            }
        };
        if let Message::Close { code, reason } = frame.message {
            // Accepted whatever its number: the peer is gone either way.
            self.state = State::Closed;
            self.closed = Some((code, reason.clone()));
            self.out.event(SessionEvent::Closed {
                code,
                reason,
                remote: true,
            });
            return Ok(());
        }
        if frame.number != self.expected_number {
            self.fail(
                CloseCode::OutOfOrder,
                format!(
                    "{} arrived as frame {}, expected frame {}",
                    frame.message.name(),
                    frame.number,
                    self.expected_number
                ),
            );
            return Ok(());
        }
        self.expected_number += 1;
        let held = self.peer_holds(&frame.message);
        let state = std::mem::replace(&mut self.state, State::Closed);
        let peer_role = self.peer_role_or_least();
        let mut ctx = Ctx {
            config: &self.config,
            out: &mut self.out,
            verifier: &mut self.verifier,
            now_ms,
            peer_role,
        };
        match dispatch(state, frame.message, checked, store, &mut ctx) {
            Ok(next) => {
                self.state = next;
                if let Some(heads) = held {
                    self.out.event(SessionEvent::Acknowledged {
                        by: peer_role,
                        heads,
                    });
                }
                Ok(())
            }
            Err(fault) => self.fault(fault),
        }
    }

    /// The peer's certificate role. `start` refuses to run without one;
    /// should it be missing anyway, the least trusted role (sensor: sent
    /// nothing, acknowledges nothing that counts).
    fn peer_role_or_least(&self) -> DeviceRole {
        self.config.peer_role.unwrap_or(DeviceRole::Sensor)
    }

    /// What the peer durably holds as the heads exchange shows it (for
    /// [`SessionEvent::Acknowledged`]): the heads in its `Heads` frame, or
    /// ours when its Hello carries the same digest. Acks are the
    /// exchange's. Emitted only if the message is accepted (a Hello that
    /// claims another role than the certificate's is not).
    fn peer_holds(&self, message: &Message) -> Option<Vec<(AuthorId, Head)>> {
        let heads: Vec<(AuthorId, Head)> = match (&self.state, message) {
            (State::ExpectHello(s), Message::Hello(hello)) => {
                if hello.version != PROTOCOL_VERSION || hello.heads_digest != self.hello_digest {
                    return None;
                }
                s.heads.iter().map(|(a, h)| (*a, *h)).collect()
            }
            (State::ExpectHeads(_), Message::Heads { heads, .. }) => heads.clone(),
            _ => return None,
        };
        let heads: Vec<(AuthorId, Head)> = heads.into_iter().filter(|(_, h)| h.seq > 0).collect();
        (!heads.is_empty()).then_some(heads)
    }

    /// Tells the session that the store holds new entries (written
    /// locally, or applied from another session): once the heads are
    /// exchanged, whatever the peer lacks is pushed to it.
    pub fn on_local_entries<S: SyncStore>(&mut self, store: &S) -> Result<(), SessionError> {
        let (State::Reconciling(x) | State::Live(x)) = &mut self.state else {
            return match self.state {
                State::Idle => Err(SessionError::NotStarted),
                _ => Ok(()),
            };
        };
        let mut ctx = Ctx {
            config: &self.config,
            out: &mut self.out,
            verifier: &mut self.verifier,
            now_ms: self.last_heard_ms,
            peer_role: self.config.peer_role.unwrap_or(DeviceRole::Sensor),
        };
        match x.push_new(store, &mut ctx) {
            Ok(()) => Ok(()),
            Err(fault) => self.fault(fault),
        }
    }

    /// Lowers [`SessionConfig::max_batch_bytes`] to at most `max` (a
    /// paced link: see `quic::DriveOptions`). Batches cut from then on
    /// are no bigger (an entry larger than `max` still travels, alone).
    pub fn cap_batch_bytes(&mut self, max: usize) {
        self.config.max_batch_bytes = self.config.max_batch_bytes.min(max);
    }

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_transmit()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.out.pop_event()
    }

    /// When [`Session::handle_timeout`] should be called (Unix ms), if the
    /// session is waiting for the peer. A live session with nothing in
    /// flight waits for nothing: keep-alives are the driver's.
    pub fn poll_timeout(&self) -> Option<u64> {
        let waiting = match &self.state {
            State::Idle | State::Closed => false,
            State::Live(x) => x.has_in_flight(),
            _ => true,
        };
        waiting.then(|| {
            self.last_heard_ms
                .saturating_add(self.config.idle_timeout_ms)
        })
    }

    /// Closes the session if its timeout has passed.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self
            .poll_timeout()
            .is_some_and(|deadline| now_ms >= deadline)
        {
            self.fail(
                CloseCode::Timeout,
                format!(
                    "nothing heard from the peer for {} ms",
                    now_ms - self.last_heard_ms
                ),
            );
        }
    }

    /// Ends the session: sends Close (unless already closed).
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        self.fail(code, reason.to_owned());
    }

    /// Whether the session has caught up and pushes entries live.
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<(CloseCode, &str)> {
        self.closed.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// The peer's role as its certificate says ([`SessionConfig::peer_role`]),
    /// the one every decision about the peer is taken on.
    pub fn peer_role(&self) -> Option<DeviceRole> {
        self.config.peer_role
    }

    /// The name of the current state, for logs.
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    pub fn stats(&self) -> &SessionStats {
        &self.out.stats
    }

    fn fault(&mut self, fault: Fault) -> Result<(), SessionError> {
        match fault {
            Fault::Peer(code, reason) => {
                self.fail(code, reason);
                Ok(())
            }
            Fault::Store(e) => {
                self.fail(CloseCode::StoreFailed, e.to_string());
                Err(SessionError::Store(e))
            }
        }
    }

    /// Sends Close and ends the session (once).
    fn fail(&mut self, code: CloseCode, reason: String) {
        if self.closed.is_some() {
            return;
        }
        self.out.send(&Message::Close {
            code,
            reason: reason.clone(),
        });
        self.out.event(SessionEvent::Closed {
            code,
            reason: reason.clone(),
            remote: false,
        });
        self.closed = Some((code, reason));
        self.state = State::Closed;
    }
}

/// The transition table: each (state, message) pair that is allowed, and
/// what it leads to. Anything else closes the session.
fn dispatch<S: SyncStore>(
    state: State,
    message: Message,
    checked: Option<CheckedBatch>,
    store: &mut S,
    ctx: &mut Ctx<'_>,
) -> Result<State, Fault> {
    match (state, message) {
        (State::ExpectHello(s), Message::Hello(hello)) => {
            s.on_hello(hello, store, ctx).map(State::from)
        }
        (
            s @ (State::ExpectHeads(_) | State::Reconciling(_) | State::Live(_)),
            Message::RevocationList(bytes),
        ) => {
            learn_revocation_list(bytes, store, ctx)?;
            Ok(s)
        }
        (State::ExpectHeads(s), Message::Heads { heads, last }) => {
            s.on_heads(heads, last, store, ctx).map(State::from)
        }
        (State::Reconciling(mut x), message) if Exchange::accepts(&message) => {
            x.on_message(message, checked, store, ctx)?;
            Ok(if x.is_caught_up() {
                ctx.out.event(SessionEvent::CaughtUp);
                State::Live(x)
            } else {
                State::Reconciling(x)
            })
        }
        (State::Live(mut x), message)
            if Exchange::accepts(&message) && !matches!(message, Message::CaughtUp) =>
        {
            x.on_message(message, checked, store, ctx)?;
            Ok(State::Live(x))
        }
        (state, message) => Err(Fault::Peer(
            CloseCode::UnexpectedMessage,
            format!(
                "{} is not allowed in state {}",
                message.name(),
                state.name()
            ),
        )),
    }
}
