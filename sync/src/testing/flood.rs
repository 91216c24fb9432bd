//! Handshakes that never finish (feature `testing`, with `quic`): what
//! someone without a certificate can throw at a sync port to hold its
//! slots, for the admission tests of node and hub (`docs/security.md`
//! 1.11).
//!
//! - [`captured_initials`] and [`initial_flood`]: the first packet of real
//!   QUIC handshakes (a client's Initial, as quinn builds it), each sent
//!   from a socket of its own and never followed up — what a sender of
//!   spoofed source addresses can do, since it never sees the answers.
//! - [`stalled_handshakes`]: real quinn clients behind a relay that passes
//!   their packets until the server has sent its handshake flight, then
//!   drops everything they send: handshakes from an address that answered
//!   the server's Retry, accepted by the server, that never finish.
//!
//! Each returns once the server has answered every attempt, so a test
//! knows the flood is in place when it goes on (events, not sleeps). The
//! sockets stay open until the returned value is dropped.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::quic::{self, SERVER_NAME};

/// How long a flood waits for the server to answer one attempt.
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The long-header packet types of QUIC v1 (RFC 9000 17.2).
const TYPE_INITIAL: u8 = 0;
const TYPE_RETRY: u8 = 3;

/// The packet type of a datagram's first packet, if it has a long header.
fn long_header_type(datagram: &[u8]) -> Option<u8> {
    let first = *datagram.first()?;
    (first & 0x80 != 0).then_some((first >> 4) & 0x03)
}

/// The destination connection id of a datagram that starts with a long
/// header Initial packet.
fn initial_dcid(datagram: &[u8]) -> Option<&[u8]> {
    if long_header_type(datagram)? != TYPE_INITIAL {
        return None;
    }
    let len = usize::from(*datagram.get(5)?);
    datagram.get(6..6 + len)
}

/// The first datagram of `n` distinct QUIC handshakes, as a client with
/// `client` (any TLS client configuration: the server never gets far
/// enough to judge it) sends them: each a padded Initial with a fresh
/// connection id, caught on a socket that never answers.
pub async fn captured_initials(client: Arc<rustls::ClientConfig>, n: usize) -> Vec<Vec<u8>> {
    let trap = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trap_addr = trap.local_addr().unwrap();
    let endpoint = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client).unwrap();
    // Kept until every Initial is caught: a dropped attempt is closed.
    let attempts: Vec<_> = (0..n)
        .map(|_| endpoint.connect(trap_addr, SERVER_NAME).unwrap())
        .collect();
    let mut seen = HashSet::new();
    let mut initials = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while initials.len() < n {
        let (len, _) = tokio::time::timeout(ANSWER_WAIT, trap.recv_from(&mut buf))
            .await
            .expect("the client sent its Initials")
            .unwrap();
        let datagram = &buf[..len];
        // Retransmissions carry the same connection id: keep the first.
        if let Some(dcid) = initial_dcid(datagram) {
            if seen.insert(dcid.to_vec()) {
                initials.push(datagram.to_vec());
            }
        }
    }
    drop(attempts);
    endpoint.close(0u32.into(), b"");
    initials
}

/// Sockets that sent one Initial each and will send nothing more.
#[derive(Debug)]
pub struct InitialFlood {
    _sockets: Vec<UdpSocket>,
    /// How many of the Initials the server answered (with anything: a
    /// Retry, its handshake flight, a refusal) within [`ANSWER_WAIT`].
    pub answered: usize,
}

/// Sends each of `initials` to `target` from a socket of its own, bound
/// to `from` (any address of the loopback network on Linux: 127.0.0.2 is
/// not the 127.0.0.1 the legitimate peer uses), then waits for the server
/// to answer each. Nothing is ever sent back: as far as the server can
/// tell, every one is a client whose handshake stalls at its first packet.
pub async fn initial_flood(target: SocketAddr, initials: &[Vec<u8>], from: IpAddr) -> InitialFlood {
    let mut sockets = Vec::with_capacity(initials.len());
    for initial in initials {
        let socket = UdpSocket::bind(SocketAddr::new(from, 0)).await.unwrap();
        socket.send_to(initial, target).await.unwrap();
        sockets.push(socket);
    }
    let mut answered = 0;
    let mut buf = vec![0u8; 65_536];
    for socket in &sockets {
        if let Ok(Ok(_)) = tokio::time::timeout(ANSWER_WAIT, socket.recv_from(&mut buf)).await {
            answered += 1;
        }
    }
    InitialFlood {
        _sockets: sockets,
        answered,
    }
}

/// Clients whose handshakes the server accepted and that never finish.
/// Dropping it stops the relays (the clients then time out on their own).
#[derive(Debug)]
pub struct Stalled {
    relays: Vec<JoinHandle<()>>,
    _attempts: Vec<quinn::Connecting>,
    _endpoint: quinn::Endpoint,
    /// How many reached the stall (the server sent its handshake flight)
    /// within [`ANSWER_WAIT`].
    pub stalled: usize,
}

impl Drop for Stalled {
    fn drop(&mut self) {
        for relay in &self.relays {
            relay.abort();
        }
    }
}

/// `n` quinn clients with `client` (any TLS client configuration: the
/// client's certificate, if any, is in the packets that never arrive),
/// each behind a relay whose server side is bound to `from`. A relay
/// passes everything until the server sends its handshake flight (the
/// first long-header packet that is not a Retry: so the client does
/// answer a Retry, and the server knows its address is real), then drops
/// whatever the client sends. Returns once every handshake has stalled.
pub async fn stalled_handshakes(
    target: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    n: usize,
    from: IpAddr,
) -> Stalled {
    let endpoint = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client).unwrap();
    let mut relays = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut stalled = 0;
    for _ in 0..n {
        let facing_client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let facing_server = UdpSocket::bind(SocketAddr::new(from, 0)).await.unwrap();
        let (flight_tx, flight_rx) = oneshot::channel();
        let relay_addr = facing_client.local_addr().unwrap();
        relays.push(tokio::spawn(relay(
            facing_client,
            facing_server,
            target,
            flight_tx,
        )));
        attempts.push(endpoint.connect(relay_addr, SERVER_NAME).unwrap());
        if let Ok(Ok(())) = tokio::time::timeout(ANSWER_WAIT, flight_rx).await {
            stalled += 1;
        }
    }
    Stalled {
        relays,
        _attempts: attempts,
        _endpoint: endpoint,
        stalled,
    }
}

/// Moves datagrams between one client and `target` until the server's
/// handshake flight passes (then says so on `flight`); from then on the
/// client's datagrams are dropped.
async fn relay(
    facing_client: UdpSocket,
    facing_server: UdpSocket,
    target: SocketAddr,
    flight: oneshot::Sender<()>,
) {
    let mut flight = Some(flight);
    let mut client: Option<SocketAddr> = None;
    let mut from_client = vec![0u8; 65_536];
    let mut from_server = vec![0u8; 65_536];
    loop {
        tokio::select! {
            got = facing_client.recv_from(&mut from_client) => {
                let Ok((len, addr)) = got else { return };
                client = Some(addr);
                if flight.is_some() {
                    let _ = facing_server.send_to(&from_client[..len], target).await;
                }
            }
            got = facing_server.recv_from(&mut from_server) => {
                let Ok((len, _)) = got else { return };
                let datagram = &from_server[..len];
                if long_header_type(datagram).is_some_and(|t| t != TYPE_RETRY) {
                    if let Some(flight) = flight.take() {
                        let _ = flight.send(());
                    }
                }
                if let Some(client) = client {
                    let _ = facing_client.send_to(datagram, client).await;
                }
            }
        }
    }
}
