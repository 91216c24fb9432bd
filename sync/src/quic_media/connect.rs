//! Media connections: a server configuration that also accepts them, how
//! to tell one from a session's connection (ALPN [`MEDIA_ALPN`]), who may
//! have one (not a sensor, by its certificate), and opening one to a peer
//! with the session's TLS client configuration.
//!
//! Never does: move a blob (`serve.rs`, `fetch.rs`, `exchange.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use quinn::{Connection, Endpoint, VarInt};

use sentinel_schema::DeviceRole;

use super::fetch::FetchError;
use super::wire::MEDIA_ALPN;
use crate::quic::{transport_config, SERVER_NAME};

/// A server TLS configuration that also accepts media connections.
pub fn with_media_alpn(server: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = server.clone();
    if !config.alpn_protocols.iter().any(|p| p == MEDIA_ALPN) {
        config.alpn_protocols.push(MEDIA_ALPN.to_vec());
    }
    Arc::new(config)
}

/// Close code of a media connection refused to its peer
/// ([`refuse_media`]).
pub const CLOSE_NOT_ALLOWED: u32 = 1;

/// Whether a peer whose verified certificate says `role` may exchange
/// media: hubs and nodes, who attach it. Never a sensor: it writes
/// readings only, and is the least protected device, so a stolen sensor
/// key must not read the deployment's photos (`docs/security.md` 1.11).
pub fn may_exchange_media(role: DeviceRole) -> bool {
    role != DeviceRole::Sensor
}

/// Closes a media connection whose peer's certificate says `role` if that
/// role may not exchange media ([`may_exchange_media`]); true if it did.
/// Call it before serving or fetching anything.
pub fn refuse_media(conn: &Connection, role: DeviceRole) -> bool {
    if may_exchange_media(role) {
        return false;
    }
    conn.close(
        VarInt::from_u32(CLOSE_NOT_ALLOWED),
        format!("no media for a {role}: the certificate's role may not exchange media").as_bytes(),
    );
    true
}

/// Whether the peer opened `conn` for media rather than for a session.
pub fn is_media_connection(conn: &Connection) -> bool {
    conn.handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .is_some_and(|p| p == MEDIA_ALPN)
}

/// Opens a media connection to a peer from `endpoint`, with the session's
/// client configuration (certificate, CA, revocation list) and ALPN
/// [`MEDIA_ALPN`].
pub async fn connect_media(
    endpoint: &Endpoint,
    addr: SocketAddr,
    client: &rustls::ClientConfig,
) -> Result<Connection, FetchError> {
    let mut tls = client.clone();
    tls.alpn_protocols = vec![MEDIA_ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(Arc::new(tls)).map_err(|e| FetchError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    let connect_err = |reason: String| FetchError::Connect { addr, reason };
    let conn = endpoint
        .connect_with(config, addr, SERVER_NAME)
        .map_err(|e| connect_err(e.to_string()))?
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    if !is_media_connection(&conn) {
        conn.close(VarInt::from_u32(0), b"no media");
        return Err(FetchError::NotMediaPeer);
    }
    Ok(conn)
}
