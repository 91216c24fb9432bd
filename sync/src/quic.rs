//! The QUIC driver: runs a [`Session`] over one bidirectional stream of a
//! quinn connection with mutual TLS.
//!
//! Frames are length-prefixed (4 bytes, big-endian) and at most
//! [`MAX_WIRE_FRAME`] long; a longer prefix closes the connection before
//! anything is allocated. A reader task feeds frames through a channel of
//! [`READ_AHEAD`] frames, which bounds memory per connection together with
//! the flow-control windows in [`transport_config`]. The session decides
//! everything else; this module only moves bytes, keeps time and closes
//! the connection with the session's reason code.
//!
//! It also pipelines: each frame is prepared ([`Session::prepare`]:
//! decoded, a batch's signatures verified) on a blocking thread as soon as
//! it is read, so batch n+1 is verified on another core while batch n is
//! applied and committed; the session handles the prepared frames in the
//! order they arrived ([`Session::handle_prepared`]), and acknowledges a
//! batch only once it committed, as ever (invariant 3). Work that blocks
//! (the store, the events' handler) runs without holding up the worker's
//! other tasks, so a session committing to disk does not stall the QUIC
//! connections beside it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, SendStream, VarInt};
use sentinel_certs::{peer_identity, CaCert, Identity};

use tokio::sync::{mpsc, watch, Semaphore};

use crate::clock::now_ms;
use crate::message::CloseCode;
pub use crate::quic_pace::Pace;
use crate::quic_read::read_frames;
pub use crate::quic_read::{DriverError, MAX_WIRE_FRAME};
use crate::session::{Session, SessionEvent, SessionStats};
use crate::store::SyncStore;

/// Frames read ahead of the session.
pub const READ_AHEAD: usize = 4;
/// How long a closing side waits for the peer to finish its stream.
pub const LINGER: Duration = Duration::from_secs(3);
/// The QUIC application close code of a connection the driver ends
/// because of an error of its own (not a session close code, 2.4).
pub const DRIVER_ERROR: u32 = 0x100;
/// Server name used in the TLS handshake. Peers are identified by their
/// certificate key, not by name (see `docs/security.md`).
pub const SERVER_NAME: &str = "sentinel";

/// How long a peer may stay silent before its connection counts as dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8);
/// How often a quiet connection is pinged: both sides do, so a live link
/// always has packets in flight, and a dead one is known within
/// [`IDLE_TIMEOUT`].
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// Idle timeout, keep-alive and flow-control windows for sync connections.
pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // A dead link is told from a slow one in seconds: each side pings
    // every KEEP_ALIVE, so even at 30 % loss each way a few packets reach
    // the other side in every IDLE_TIMEOUT window, and silence that long
    // means the link or the peer is gone. Pings also keep a live session
    // open through NATs. (Cost when idle: a ping and its ack every 2 s,
    // about 100 bytes.)
    t.max_idle_timeout(Some(
        VarInt::from_u64(IDLE_TIMEOUT.as_millis() as u64)
            .unwrap_or(VarInt::from_u32(8_000))
            .into(),
    ));
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // Bounded memory per connection: a few frames in flight at most.
    t.stream_receive_window(VarInt::from_u32(4 * 1024 * 1024));
    t.receive_window(VarInt::from_u32(8 * 1024 * 1024));
    t.send_window(8 * 1024 * 1024);
    t.max_concurrent_bidi_streams(VarInt::from_u32(4));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t
}

/// An endpoint that accepts sync connections on `addr` (and can connect).
pub fn server_endpoint(
    addr: SocketAddr,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<Endpoint, DriverError> {
    let crypto = QuicServerConfig::try_from(server).map_err(|e| DriverError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    let mut endpoint = Endpoint::server(config, addr)?;
    endpoint.set_default_client_config(client_config(client)?);
    Ok(endpoint)
}

/// The stateless-reset secret of a device: derived from its signing key,
/// so the same device has the same one after a restart.
pub fn reset_secret(device_key: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"sentinel quic stateless reset v1\0");
    h.update(device_key);
    h.finalize().into()
}

/// [`server_endpoint`] whose stateless-reset key is derived from `secret`
/// ([`reset_secret`]) instead of drawn at random. A peer still talking to
/// the process this one replaced (a restart on the same address) gets a
/// stateless reset its connection recognises at its next packet — a
/// keep-alive at most [`KEEP_ALIVE`] later — and reconnects at once,
/// instead of waiting out [`IDLE_TIMEOUT`].
pub fn server_endpoint_keyed(
    addr: SocketAddr,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    secret: &[u8; 32],
) -> Result<Endpoint, DriverError> {
    let crypto = QuicServerConfig::try_from(server).map_err(|e| DriverError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset));
    // quinn's default connection ids carry a check keyed per process, and
    // a packet whose id fails it is dropped before any reset is
    // considered: ids without such a check let the next process answer.
    endpoint_config.cid_generator(|| Box::<RandomCids>::default());
    let socket = std::net::UdpSocket::bind(addr)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| DriverError::Io(std::io::Error::other("no async runtime")))?;
    let mut endpoint = Endpoint::new(endpoint_config, Some(config), socket, runtime)?;
    endpoint.set_default_client_config(client_config(client)?);
    Ok(endpoint)
}

fn client_config(client: Arc<rustls::ClientConfig>) -> Result<quinn::ClientConfig, DriverError> {
    let crypto = QuicClientConfig::try_from(client).map_err(|e| DriverError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// An endpoint that only connects out.
pub fn client_endpoint(
    bind: SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> Result<Endpoint, DriverError> {
    let mut endpoint = Endpoint::client(bind)?;
    endpoint.set_default_client_config(client_config(client)?);
    Ok(endpoint)
}

/// Connection ids of 8 random bytes, with no check a later process could
/// not repeat (see [`server_endpoint_keyed`]).
#[derive(Default)]
struct RandomCids {
    /// Ids handed out so far: mixed in, so ids stay distinct even if the
    /// system's generator ever failed.
    count: u64,
}

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        use ring::rand::SecureRandom;
        self.count = self.count.wrapping_add(1);
        let mut id = [0u8; 8];
        if ring::rand::SystemRandom::new().fill(&mut id).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            id = (nanos ^ self.count.rotate_left(40)).to_le_bytes();
        }
        quinn::ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// Connects to a peer; the handshake has verified its certificate when
/// this returns.
pub async fn connect(endpoint: &Endpoint, addr: SocketAddr) -> Result<Connection, DriverError> {
    let connecting = endpoint
        .connect(addr, SERVER_NAME)
        .map_err(|e| DriverError::Connect {
            addr,
            reason: e.to_string(),
        })?;
    connecting.await.map_err(|e| DriverError::Connect {
        addr,
        reason: e.to_string(),
    })
}

/// The certificates the peer presented in the handshake, its own first.
fn peer_certificates(
    conn: &Connection,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, DriverError> {
    let any = conn
        .peer_identity()
        .ok_or_else(|| DriverError::PeerIdentity("no certificate".into()))?;
    any.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
        .map(|certs| *certs)
        .map_err(|_| DriverError::PeerIdentity("not a certificate chain".into()))
}

/// Who the peer is, from the certificate it presented in the handshake.
pub fn identity_of(conn: &Connection, ca: &CaCert) -> Result<Identity, DriverError> {
    peer_identity(&peer_certificates(conn)?, ca)
        .map_err(|e| DriverError::PeerIdentity(e.to_string()))
}

/// Which side opens the session's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Connected out: opens the stream.
    Initiator,
    /// Accepted the connection: accepts the stream.
    Acceptor,
}

/// How long to keep a session running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Close normally once both sides are caught up (one-shot `sync`).
    CaughtUp,
    /// Stay live, pushing new entries, until the peer or the caller ends it.
    Closed,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stats: SessionStats,
    pub code: CloseCode,
    pub reason: String,
    /// The peer closed it (rather than this side).
    pub remote: bool,
    pub caught_up: bool,
}

/// Keeps the reason a connection ended (a refused certificate, a close
/// code) instead of quinn's bare "connection lost".
fn write_error(e: quinn::WriteError) -> DriverError {
    match e {
        quinn::WriteError::ConnectionLost(c) => DriverError::Connection(c),
        e => DriverError::Io(e.into()),
    }
}

async fn write_frame(send: &mut SendStream, frame: &[u8]) -> Result<(), DriverError> {
    let len = u32::try_from(frame.len()).map_err(|_| DriverError::FrameTooLarge(frame.len()))?;
    send.write_all(&len.to_be_bytes())
        .await
        .map_err(write_error)?;
    send.write_all(frame).await.map_err(write_error)
}

/// Runs `f`, which blocks (it waits for the store, or commits to disk),
/// without holding up the other tasks of this worker thread (the QUIC
/// connections' own, the reader's): on a multi-threaded runtime they move
/// to another worker meanwhile. On a single-threaded runtime it simply
/// runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `session` over `conn` until it closes (or, with
/// [`Until::CaughtUp`], until both sides are caught up). `local` signals
/// that the local store has new entries to push live; `on_event` sees
/// every session event as it happens.
///
/// Before the session starts, the driver gives it the peer as the TLS
/// handshake proved it ([`Session::authenticate_peer`]): the author and
/// the role of the certificate the peer presented, whatever the session
/// was configured with. A Hello that claims another role then ends the
/// session ([`CloseCode::RoleMismatch`]).
///
/// [`drive_with`] with no options.
pub async fn drive<S: SyncStore>(
    conn: &Connection,
    side: Side,
    session: Session,
    store: Arc<Mutex<S>>,
    until: Until,
    local: Option<watch::Receiver<u64>>,
    on_event: impl FnMut(&SessionEvent),
) -> Result<Outcome, DriverError> {
    drive_with(
        conn,
        side,
        session,
        store,
        until,
        local,
        DriveOptions::default(),
        on_event,
    )
    .await
}

/// [`drive`], touching the store only while holding a permit of `store_work`
/// (when given). A server with many sessions and a store that blocks (a
/// pooled database) bounds how many sessions use the store at once, so
/// sessions waiting for the store wait as tasks, not as parked threads,
/// and the endpoint keeps accepting handshakes.
///
/// [`drive_with`] with only [`DriveOptions::store_work`].
#[allow(clippy::too_many_arguments)]
pub async fn drive_limited<S: SyncStore>(
    conn: &Connection,
    side: Side,
    session: Session,
    store: Arc<Mutex<S>>,
    until: Until,
    local: Option<watch::Receiver<u64>>,
    store_work: Option<Arc<Semaphore>>,
    on_event: impl FnMut(&SessionEvent),
) -> Result<Outcome, DriverError> {
    let options = DriveOptions {
        store_work,
        ..DriveOptions::default()
    };
    drive_with(conn, side, session, store, until, local, options, on_event).await
}

/// What [`drive_with`] may use besides the session and the store.
#[derive(Debug, Clone, Default)]
pub struct DriveOptions {
    /// Touch the store only while holding a permit of this semaphore (see
    /// [`drive_limited`]).
    pub store_work: Option<Arc<Semaphore>>,
    /// The link's bandwidth cap: every frame this side writes waits for
    /// it, and media on the same [`Pace`] holds back while frames wait.
    /// A paced session's batches are cut to [`Pace::batch_bytes`], so that
    /// none takes longer to write than the peer's idle timeout.
    pub pace: Option<Pace>,
}

/// [`drive`] with [`DriveOptions`]: a store gate, a bandwidth cap.
#[allow(clippy::too_many_arguments)]
pub async fn drive_with<S: SyncStore>(
    conn: &Connection,
    side: Side,
    mut session: Session,
    store: Arc<Mutex<S>>,
    until: Until,
    mut local: Option<watch::Receiver<u64>>,
    options: DriveOptions,
    mut on_event: impl FnMut(&SessionEvent),
) -> Result<Outcome, DriverError> {
    let DriveOptions { store_work, pace } = options;
    if let Some(pace) = &pace {
        session.cap_batch_bytes(pace.batch_bytes());
    }
    let permit = || async {
        match &store_work {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    };
    let setup = async {
        let certs = peer_certificates(conn)?;
        let own = certs
            .first()
            .ok_or_else(|| DriverError::PeerIdentity("no certificate".into()))?;
        session.authenticate_peer(own)?;
        Ok::<_, DriverError>(match side {
            Side::Initiator => conn.open_bi().await?,
            Side::Acceptor => conn.accept_bi().await?,
        })
    };
    let (mut send, recv) = match setup.await {
        Ok(streams) => streams,
        Err(e) => {
            conn.close(VarInt::from_u32(DRIVER_ERROR), e.to_string().as_bytes());
            return Err(e);
        }
    };
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read_frames(recv, tx));
    let started = async {
        let _permit = permit().await;
        let guard = store.lock().map_err(|_| poisoned())?;
        session.start(&*guard, now_ms())?;
        Ok::<_, DriverError>(())
    };
    if let Err(e) = started.await {
        reader.abort();
        conn.close(VarInt::from_u32(DRIVER_ERROR), e.to_string().as_bytes());
        return Err(e);
    }
    let mut caught_up = false;
    let mut remote_close = false;
    let result: Result<(), DriverError> = async {
        loop {
            // While frames wait for the cap, media on the same link
            // holds back (entries before media).
            let mut waiting = None;
            while let Some(frame) = session.poll_transmit() {
                if let Some(pace) = &pace {
                    waiting.get_or_insert_with(|| pace.entries_waiting());
                    pace.entries(frame.len() + 4).await;
                }
                write_frame(&mut send, &frame).await?;
            }
            drop(waiting);
            // What a driver does on events may block too (a node projects
            // its views).
            let mut events = std::iter::from_fn(|| session.poll_event()).peekable();
            if events.peek().is_some() {
                blocking(|| {
                    for event in events {
                        if event == SessionEvent::CaughtUp {
                            caught_up = true;
                        }
                        if let SessionEvent::Closed { remote, .. } = &event {
                            remote_close = *remote;
                        }
                        on_event(&event);
                    }
                });
            }
            if session.is_closed() || (caught_up && until == Until::CaughtUp) {
                return Ok(());
            }
            let timeout = session
                .poll_timeout()
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(Ok(pending)) => {
                        let prepared = pending.ready().await?;
                        let _permit = permit().await;
                        blocking(|| {
                            let mut guard = store.lock().map_err(|_| poisoned())?;
                            session.handle_prepared(prepared, &mut *guard, now_ms())?;
                            Ok::<_, DriverError>(())
                        })?;
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        // The peer finished its stream: it closed the session.
                        remote_close = true;
                        return Ok(());
                    }
                },
                _ = tokio::time::sleep(timeout) => session.handle_timeout(now_ms()),
                changed = wait_changed(&mut local) => {
                    if changed {
                        let _permit = permit().await;
                        blocking(|| {
                            let guard = store.lock().map_err(|_| poisoned())?;
                            session.on_local_entries(&*guard)?;
                            Ok::<_, DriverError>(())
                        })?;
                    } else {
                        local = None;
                    }
                }
            }
        }
    }
    .await;
    // Finish our side, and give the peer a moment to finish its own, so
    // that the last frames (an Ack, a Close) are delivered before the
    // connection goes away.
    let _ = send.finish();
    if !remote_close {
        let _ = tokio::time::timeout(LINGER, async { while rx.recv().await.is_some() {} }).await;
    }
    reader.abort();
    let (code, reason) = match (&result, session.close_reason()) {
        (_, Some((code, reason))) => (code, reason.to_string()),
        // The peer closed the connection without a Close frame: a server
        // that refused the connection after the handshake (a limit), or a
        // peer that had caught up. Its code and reason say which.
        (Ok(()), None) => match conn.close_reason() {
            Some(quinn::ConnectionError::ApplicationClosed(c)) if !caught_up => (
                CloseCode::from_wire(c.error_code.into_inner()),
                String::from_utf8_lossy(&c.reason).into_owned(),
            ),
            _ => (CloseCode::Normal, "caught up".to_string()),
        },
        (Err(e), None) => (CloseCode::Other(DRIVER_ERROR.into()), e.to_string()),
    };
    if !remote_close {
        conn.close(
            VarInt::from_u64(code.to_wire()).unwrap_or(VarInt::from_u32(0)),
            reason.as_bytes(),
        );
    }
    result?;
    Ok(Outcome {
        stats: *session.stats(),
        code,
        reason,
        remote: remote_close,
        caught_up,
    })
}

/// Resolves when the local store has new entries (`true`), or never when
/// there is no signal (`false` when the sender is gone).
async fn wait_changed(local: &mut Option<watch::Receiver<u64>>) -> bool {
    match local {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

fn poisoned() -> DriverError {
    DriverError::Io(std::io::Error::other("the store lock is poisoned"))
}
