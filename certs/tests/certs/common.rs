//! Fixtures shared by the tests: fixed keys, a fixed "now", CAs and
//! enrollments, and an in-memory TLS handshake driver.

use std::sync::Arc;
use std::time::Duration;

use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use rustls_pki_types::{ServerName, UnixTime};
use sentinel_certs::{Ca, DeviceRole, Enrollment, RevocationList, Revoked, SigningKey};

/// The tests' "now": 2027-01-15T08:00:00Z, in Unix ms.
pub const T0: u64 = 1_800_000_000_000;
pub const DAY: u64 = 24 * 60 * 60 * 1000;

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A CA valid from 30 days before [`T0`] to a year after.
pub fn ca(name: &str, seed: u8) -> Ca {
    Ca::create(name, T0 - 30 * DAY, T0 + 365 * DAY, key(seed)).unwrap()
}

/// An enrollment valid from 10 days before [`T0`] to 100 days after.
pub fn enroll(ca: &Ca, role: DeviceRole, name: &str, seed: u8) -> Enrollment {
    enroll_valid(ca, role, name, seed, T0 - 10 * DAY, T0 + 100 * DAY)
}

pub fn enroll_valid(
    ca: &Ca,
    role: DeviceRole,
    name: &str,
    seed: u8,
    from: u64,
    until: u64,
) -> Enrollment {
    ca.enroll(role, name, key(seed), from, until, T0).unwrap()
}

/// A signed list revoking `revoked` (with last valid seq 3).
pub fn signed_list(ca: &Ca, number: u64, issued_ms: u64, revoked: &[&Enrollment]) -> Vec<u8> {
    RevocationList {
        number,
        issued_ms,
        revoked: revoked
            .iter()
            .map(|e| Revoked {
                key: e.identity.author,
                last_valid_seq: 3,
                reason: "test".to_string(),
            })
            .collect(),
    }
    .sign(ca)
    .unwrap()
}

/// A clock stopped at a given Unix ms.
#[derive(Debug)]
pub struct FixedTime(pub u64);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_millis(self.0)))
    }
}

pub fn at(ms: u64) -> Arc<dyn TimeProvider> {
    Arc::new(FixedTime(ms))
}

/// What came of driving a handshake to its end.
pub struct Handshake {
    pub client: ClientConnection,
    pub server: ServerConnection,
    pub client_error: Option<rustls::Error>,
    pub server_error: Option<rustls::Error>,
}

impl Handshake {
    pub fn succeeded(&self) -> bool {
        self.client_error.is_none()
            && self.server_error.is_none()
            && !self.client.is_handshaking()
            && !self.server.is_handshaking()
    }
}

/// Moves every pending TLS record from `from` to `to` and lets `to`
/// process them. Returns whether anything moved.
fn transfer(
    from: &mut Connection,
    to: &mut Connection,
    to_error: &mut Option<rustls::Error>,
) -> bool {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    if bytes.is_empty() || to_error.is_some() {
        return false;
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() && to_error.is_none() {
        to.read_tls(&mut rest).unwrap();
        if let Err(e) = to.process_new_packets() {
            *to_error = Some(e);
        }
    }
    true
}

/// Runs a full handshake between a client and a server by pumping bytes
/// between them in memory, including the alerts a refusal sends (in TLS
/// 1.3 the client learns of a refused client certificate only then).
pub fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> Handshake {
    let name = ServerName::IpAddress(std::net::Ipv4Addr::new(10, 0, 0, 7).into());
    let mut client = Connection::Client(ClientConnection::new(Arc::clone(client), name).unwrap());
    let mut server = Connection::Server(ServerConnection::new(Arc::clone(server)).unwrap());
    let (mut client_error, mut server_error) = (None, None);
    for _ in 0..32 {
        let a = transfer(&mut client, &mut server, &mut server_error);
        let b = transfer(&mut server, &mut client, &mut client_error);
        if !a && !b {
            break;
        }
    }
    let (Connection::Client(client), Connection::Server(server)) = (client, server) else {
        unreachable!("the connections keep their sides");
    };
    Handshake {
        client,
        server,
        client_error,
        server_error,
    }
}
