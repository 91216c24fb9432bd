//! Who gets a connection on a sync port, and when a connection counts
//! (`docs/security.md` 1.11): the one gate node (`serve`) and hub put in
//! front of their sessions and media connections.
//!
//! 1. **Address validation first.** An Initial from an address that has
//!    not proved it receives our packets is answered with a QUIC Retry
//!    ([`quinn::Incoming::retry`]): stateless, nothing is kept, and a
//!    sender of spoofed addresses never gets further.
//! 2. **Per source address.** A validated address may hold at most
//!    [`Limits::max_per_address`] connections at once, handshakes
//!    included; more are refused (`CONNECTION_REFUSED`) before any TLS
//!    work.
//! 3. **Bounded handshakes.** A handshake that does not finish within
//!    [`Limits::handshake_timeout`] is dropped (quinn itself only has the
//!    idle timeout, which a client that keeps sending resets).
//! 4. **Slots for the verified only.** A connection takes one of
//!    [`Limits::max_sessions`] slots only once its TLS handshake has
//!    completed and its certificate verified, and one certificate key
//!    holds at most [`Limits::max_per_peer`] of them. Beyond either, the
//!    connection is closed at once with [`CloseCode::LimitExceeded`] and
//!    a reason that says which limit.
//!
//! So a flood of handshakes that never finish holds no slot, and an
//! enrolled peer still gets in while it runs; a stolen key can hold a few
//! slots, not all of them.
//!
//! Never does: run a session or a media exchange, or decide what an
//! admitted peer may do (the session and the servers do, on the
//! certificate's role).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use quinn::{Connection, Incoming, VarInt};
use sentinel_certs::{CaCert, Identity};
use sentinel_schema::AuthorId;

use crate::message::CloseCode;
use crate::quic::identity_of;

/// How long a handshake may take, by default (as the hub's HTTPS
/// handshakes).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Verified connections of one certificate key at once, by default: a
/// session, a media connection, and room for a reconnect while the old
/// connection is still closing.
pub const DEFAULT_MAX_PER_PEER: usize = 4;

/// What a sync port admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Verified connections (sessions and media) at once, at least 1.
    pub max_sessions: usize,
    /// Connections from one IP address at once, handshakes included; 0
    /// turns the cap off.
    pub max_per_address: usize,
    /// Verified connections of one certificate key at once, at least 1.
    pub max_per_peer: usize,
    /// Longest a handshake may take before it is dropped.
    pub handshake_timeout: Duration,
}

impl Limits {
    /// A field node's `serve`: a few peers and sensors at once.
    pub const NODE: Limits = Limits {
        max_sessions: 64,
        max_per_address: 16,
        max_per_peer: DEFAULT_MAX_PER_PEER,
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
    };

    /// A hub: many nodes, some of them behind one address (NAT).
    pub const HUB: Limits = Limits {
        max_sessions: 1000,
        max_per_address: 64,
        max_per_peer: DEFAULT_MAX_PER_PEER,
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
    };
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The address was not validated and a Retry could not be sent.
    NotValidated { addr: IpAddr },
    /// The address already holds [`Limits::max_per_address`] connections.
    AddressBusy { addr: IpAddr, max: usize },
    /// The handshake failed (unknown CA, revoked, expired, no certificate…).
    Handshake(String),
    /// The handshake did not finish within [`Limits::handshake_timeout`].
    HandshakeTimeout(Duration),
    /// The peer's certificate could not be read after the handshake.
    Identity(String),
    /// [`Limits::max_sessions`] verified connections are open.
    Full { max: usize },
    /// The peer's key already holds [`Limits::max_per_peer`] connections.
    PeerBusy { max: usize },
}

impl Refusal {
    /// A short name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NotValidated { .. } => "not_validated",
            Refusal::AddressBusy { .. } => "address_busy",
            Refusal::Handshake(_) => "handshake_refused",
            Refusal::HandshakeTimeout(_) => "handshake_timeout",
            Refusal::Identity(_) => "no_identity",
            Refusal::Full { .. } => "full",
            Refusal::PeerBusy { .. } => "peer_busy",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotValidated { addr } => write!(f, "{addr} is not validated"),
            Refusal::AddressBusy { addr, max } => {
                write!(f, "{max} connections from {addr} already open")
            }
            Refusal::Handshake(e) => write!(f, "handshake refused: {e}"),
            Refusal::HandshakeTimeout(t) => {
                write!(f, "handshake refused: not finished within {t:?}")
            }
            Refusal::Identity(e) => write!(f, "the peer's certificate: {e}"),
            Refusal::Full { max } => write!(f, "{max} sessions already running"),
            Refusal::PeerBusy { max } => {
                write!(f, "{max} sessions of this peer already running")
            }
        }
    }
}

/// What [`Gate::screen`] did with an incoming connection.
#[derive(Debug)]
pub enum Screened {
    /// Answered with a Retry: the address must prove itself. Nothing kept.
    Retried,
    /// Refused before the handshake.
    Refused(Refusal),
    /// Validated, under its address's cap: run the handshake.
    Handshake(Box<Pending>),
}

#[derive(Debug, Default)]
struct Counts {
    /// Verified connections.
    sessions: usize,
    /// Connections (handshakes included) per source address.
    per_address: HashMap<IpAddr, usize>,
    /// Verified connections per certificate key.
    per_peer: HashMap<AuthorId, usize>,
}

/// The admission state of one sync port, shared by its connections.
#[derive(Debug, Clone)]
pub struct Gate {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
}

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        Gate {
            limits: Limits {
                max_sessions: limits.max_sessions.max(1),
                max_per_peer: limits.max_per_peer.max(1),
                ..limits
            },
            counts: Arc::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Verified connections open now.
    pub fn sessions(&self) -> usize {
        self.lock().sessions
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent whatever panicked while holding them:
        // every change is one statement.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first look at an incoming connection, in the accept loop (it
    /// never waits): a Retry for an address not validated yet, a refusal
    /// for an address at its cap, else the handshake may run.
    pub fn screen(&self, incoming: Incoming) -> Screened {
        if !incoming.remote_address_validated() {
            // Not validated implies a Retry may be sent (quinn's promise);
            // refuse rather than trust that blindly.
            return match incoming.retry() {
                Ok(()) => Screened::Retried,
                Err(e) => {
                    let incoming = e.into_incoming();
                    let addr = canonical(incoming.remote_address());
                    incoming.refuse();
                    Screened::Refused(Refusal::NotValidated { addr })
                }
            };
        }
        let addr = canonical(incoming.remote_address());
        match self.take_address(addr) {
            Some(ticket) => Screened::Handshake(Box::new(Pending { incoming, ticket })),
            None => {
                incoming.refuse();
                Screened::Refused(Refusal::AddressBusy {
                    addr,
                    max: self.limits.max_per_address,
                })
            }
        }
    }

    fn take_address(&self, addr: IpAddr) -> Option<AddressTicket> {
        let mut counts = self.lock();
        let n = counts.per_address.entry(addr).or_insert(0);
        if self.limits.max_per_address > 0 && *n >= self.limits.max_per_address {
            return None;
        }
        *n += 1;
        Some(AddressTicket {
            gate: self.clone(),
            addr,
        })
    }

    fn take_slot(&self, peer: AuthorId) -> Result<SlotTicket, Refusal> {
        let mut counts = self.lock();
        if counts.sessions >= self.limits.max_sessions {
            return Err(Refusal::Full {
                max: self.limits.max_sessions,
            });
        }
        let n = counts.per_peer.entry(peer).or_insert(0);
        if *n >= self.limits.max_per_peer {
            return Err(Refusal::PeerBusy {
                max: self.limits.max_per_peer,
            });
        }
        *n += 1;
        counts.sessions += 1;
        Ok(SlotTicket {
            gate: self.clone(),
            peer,
        })
    }
}

/// An IPv4 peer on a dual-stack socket is the same address as itself on
/// an IPv4 socket.
fn canonical(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// One connection counted against its source address until dropped.
#[derive(Debug)]
struct AddressTicket {
    gate: Gate,
    addr: IpAddr,
}

impl Drop for AddressTicket {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        if let Some(n) = counts.per_address.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_address.remove(&self.addr);
            }
        }
    }
}

/// One verified connection counted as a session and against its peer's
/// key until dropped.
#[derive(Debug)]
struct SlotTicket {
    gate: Gate,
    peer: AuthorId,
}

impl Drop for SlotTicket {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        counts.sessions = counts.sessions.saturating_sub(1);
        if let Some(n) = counts.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
    }
}

/// A validated incoming connection, counted against its address, whose
/// handshake has not run yet.
#[derive(Debug)]
pub struct Pending {
    incoming: Incoming,
    ticket: AddressTicket,
}

impl Pending {
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Runs the handshake (bounded by [`Limits::handshake_timeout`]),
    /// reads the peer's verified certificate, and takes a slot for it.
    /// A connection refused after its handshake is closed with
    /// [`CloseCode::LimitExceeded`] and the refusal as the reason.
    pub async fn handshake(self: Box<Self>, ca: &CaCert) -> Result<Admitted, Refusal> {
        let Pending { incoming, ticket } = *self;
        let limits = ticket.gate.limits;
        let connecting = incoming
            .accept()
            .map_err(|e| Refusal::Handshake(e.to_string()))?;
        // Dropping an unfinished handshake closes it.
        let conn = match tokio::time::timeout(limits.handshake_timeout, connecting).await {
            Err(_) => return Err(Refusal::HandshakeTimeout(limits.handshake_timeout)),
            Ok(Err(e)) => return Err(Refusal::Handshake(e.to_string())),
            Ok(Ok(conn)) => conn,
        };
        let identity = match identity_of(&conn, ca) {
            Ok(identity) => identity,
            Err(e) => {
                let refusal = Refusal::Identity(e.to_string());
                close(&conn, &refusal);
                return Err(refusal);
            }
        };
        match ticket.gate.take_slot(identity.author) {
            Ok(slot) => Ok(Admitted {
                conn,
                identity,
                _tickets: (ticket, slot),
            }),
            Err(refusal) => {
                close(&conn, &refusal);
                Err(refusal)
            }
        }
    }
}

fn close(conn: &Connection, why: &Refusal) {
    conn.close(
        VarInt::from_u64(CloseCode::LimitExceeded.to_wire()).unwrap_or(VarInt::from_u32(0)),
        why.to_string().as_bytes(),
    );
}

/// A connection whose handshake completed and whose certificate
/// verified, holding its slot (and its place in its address's count)
/// until dropped: keep it for as long as the connection runs.
#[derive(Debug)]
pub struct Admitted {
    pub conn: Connection,
    /// Who the peer is, from its verified certificate: its role decides
    /// what it is given, never what it says.
    pub identity: Identity,
    _tickets: (AddressTicket, SlotTicket),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(sessions: usize, per_address: usize, per_peer: usize) -> Limits {
        Limits {
            max_sessions: sessions,
            max_per_address: per_address,
            max_per_peer: per_peer,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_gets_it_back() {
        let gate = Gate::new(limits(10, 2, 4));
        let a = gate.take_address(ip(1)).unwrap();
        let _b = gate.take_address(ip(1)).unwrap();
        assert!(gate.take_address(ip(1)).is_none());
        assert!(gate.take_address(ip(2)).is_some(), "another address");
        drop(a);
        assert!(gate.take_address(ip(1)).is_some());
    }

    #[test]
    fn no_cap_per_address_when_it_is_zero() {
        let gate = Gate::new(limits(10, 0, 4));
        let held: Vec<_> = (0..100).map(|_| gate.take_address(ip(1))).collect();
        assert!(held.iter().all(Option::is_some));
    }

    #[test]
    fn slots_are_capped_in_all_and_per_peer() {
        let gate = Gate::new(limits(3, 0, 2));
        let (p, q, r) = (AuthorId([1; 32]), AuthorId([2; 32]), AuthorId([3; 32]));
        let p1 = gate.take_slot(p).unwrap();
        let _p2 = gate.take_slot(p).unwrap();
        assert_eq!(
            gate.take_slot(p).unwrap_err(),
            Refusal::PeerBusy { max: 2 },
            "a third of one peer"
        );
        let _q1 = gate.take_slot(q).unwrap();
        assert_eq!(gate.sessions(), 3);
        assert_eq!(gate.take_slot(r).unwrap_err(), Refusal::Full { max: 3 });
        drop(p1);
        assert_eq!(gate.sessions(), 2);
        assert!(gate.take_slot(r).is_ok(), "a slot came free");
    }

    #[test]
    fn the_limits_are_at_least_one_session() {
        let gate = Gate::new(limits(0, 0, 0));
        assert_eq!(gate.limits().max_sessions, 1);
        assert_eq!(gate.limits().max_per_peer, 1);
        assert!(gate.take_slot(AuthorId([1; 32])).is_ok());
    }

    #[test]
    fn refusals_say_which_limit() {
        assert_eq!(
            Refusal::PeerBusy { max: 4 }.to_string(),
            "4 sessions of this peer already running"
        );
        assert_eq!(Refusal::Full { max: 9 }.kind(), "full");
    }
}
