//! Media blobs over QUIC: content-addressed, chunked, resumable from an
//! offset, and verified by the receiver before anything becomes visible
//! (`docs/protocol.md` 2.10).
//!
//! Blobs travel on their own connection, told apart from a session's
//! connection by ALPN ([`MEDIA_ALPN`] instead of `sentinel/1`), so they
//! never share a stream, a read-ahead channel or a close with a session:
//! the session driver in [`crate::quic`] owns its connection and closes it
//! when it is done.
//!
//! A media connection is two-way ([`exchange_blobs`]): either side opens
//! one bidirectional stream per blob it wants, starting with the stream
//! type byte [`BLOB_STREAM`] and a fixed-size request (hash, offset); the
//! other side answers with a fixed-size header and length-prefixed chunks,
//! then finishes the stream. A side that has fetched all it wanted says so
//! on one more bidirectional stream holding the type byte [`DONE_STREAM`],
//! which the peer answers by finishing its half; once both sides are done
//! (or the peer has been silent for [`PEER_IDLE`]) the connection is
//! closed.
//!
//! The type byte also keeps the door open for carrying blob streams on a
//! session connection later: a session stream starts with the 4-byte
//! length of its first frame, whose first byte is always `0x00` (frames are
//! far below 16 MiB), never [`BLOB_STREAM`] or [`DONE_STREAM`].
//!
//! The receiver trusts nothing the peer says: the size must be the one the
//! signed `media_attached` entry announced, no more than the missing bytes
//! may arrive, and [`BlobStore::finish_partial`] checks the SHA-256 (and
//! whatever else the store checks) before the blob is stored.
//!
//! [`blobs`] is the store both the node and the hub use: a folder of
//! content-addressed files with resumable, verified downloads.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use sentinel_schema::limits::MAX_MEDIA_BYTES;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::quic::{transport_config, SERVER_NAME};

pub mod blobs;

/// The application protocol of media connections.
pub const MEDIA_ALPN: &[u8] = b"sentinel-media/1";
/// First byte of a blob stream ('B').
pub const BLOB_STREAM: u8 = 0x42;
/// First and only byte of a done stream ('D'): the sender has fetched all
/// it wanted and opens no more blob streams.
pub const DONE_STREAM: u8 = 0x44;
/// Size of a blob request: type byte, hash, offset.
pub const REQUEST_BYTES: usize = 1 + 32 + 8;
/// Size of a response header: status, blob size.
pub const HEADER_BYTES: usize = 1 + 8;
/// Largest chunk a sender sends and a receiver accepts.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Blob streams a fetcher keeps open at once. The transport allows four
/// bidirectional streams per connection; one is left spare (for the done
/// stream).
pub const MAX_CONCURRENT_FETCHES: usize = 3;
/// How long a side that has finished its own fetches waits for a peer that
/// has not said it is done and makes no progress (opens no stream, takes
/// no chunk). A slow transfer is not silence: every chunk resets the wait.
pub const PEER_IDLE: Duration = Duration::from_secs(10);
/// Close code of a media connection both sides are done with.
pub const CLOSE_DONE: u32 = 0;

/// Stream reset code: the request was not a blob request.
const RESET_BAD_REQUEST: u32 = 1;
/// Stream reset code: the blob could not be read while sending it.
const RESET_READ_FAILED: u32 = 2;

/// What the media driver needs from a blob store. Every method may block
/// on the disk; the driver calls the slow ones off the async threads.
pub trait BlobStore: Send + Sync {
    /// Whether a verified blob with this hash is stored.
    fn has(&self, hash: &[u8; 32]) -> bool;
    /// The stored blob's size, if it is stored.
    fn size(&self, hash: &[u8; 32]) -> Option<u64>;
    /// Up to `max` bytes of the stored blob from `offset` (fewer only at
    /// its end).
    fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>>;
    /// How many bytes of an unfinished download of this blob are kept.
    fn partial_len(&self, hash: &[u8; 32]) -> u64;
    /// Appends bytes to the unfinished download, durably; `offset` must be
    /// its current length.
    fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Checks the finished download (size, SHA-256 equal to `hash`, and
    /// anything else the store checks) and only then makes it a blob. On a
    /// mismatch the download is discarded and the reason returned.
    fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String>;
    /// Throws away an unfinished download that cannot be resumed.
    fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()>;
}

/// Why a blob (or the media connection) could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The TLS configuration cannot be used for QUIC.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// Connecting to the peer failed.
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The peer accepted the connection but does not serve media.
    #[error("the peer does not serve media (ALPN {MEDIA_ALPN:?} not agreed)")]
    NotMediaPeer,
    /// The connection broke.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Reading or writing the blob's stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// The announced size is 0 or over [`MAX_MEDIA_BYTES`].
    #[error("a blob of {0} bytes is not allowed (1..={MAX_MEDIA_BYTES})")]
    BadSize(u64),
    /// The peer does not hold the blob.
    #[error("the peer does not hold the blob")]
    NotFound,
    /// The peer refused the requested offset (past the blob's end).
    #[error("the peer refused offset {0}")]
    BadOffset(u64),
    /// The peer answered with a status this side does not know.
    #[error("the peer answered with unknown status {0}")]
    UnknownStatus(u8),
    /// The peer's size is not the one the entry announced.
    #[error("the peer has {peer} bytes, the entry announced {announced}")]
    SizeMismatch { peer: u64, announced: u64 },
    /// A chunk of 0 bytes or over [`CHUNK_BYTES`].
    #[error("the peer sent a chunk of {0} bytes (1..={CHUNK_BYTES})")]
    BadChunk(usize),
    /// More bytes than were missing.
    #[error("the peer sent {sent} bytes where {missing} were missing")]
    TooManyBytes { sent: u64, missing: u64 },
    /// The stream ended before the blob was complete (kept for resuming).
    #[error("the stream ended after {received} of {missing} missing bytes")]
    EndedEarly { received: u64, missing: u64 },
    /// The local store failed.
    #[error("store: {0}")]
    Store(String),
    /// The finished download failed verification and was discarded.
    #[error("refused: {0}")]
    Refused(String),
}

/// A request for a blob from `offset` to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRequest {
    pub hash: [u8; 32],
    pub offset: u64,
}

impl BlobRequest {
    pub fn encode(&self) -> [u8; REQUEST_BYTES] {
        let mut out = [0u8; REQUEST_BYTES];
        out[0] = BLOB_STREAM;
        out[1..33].copy_from_slice(&self.hash);
        out[33..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    /// Parses a request; `None` if the stream type is not [`BLOB_STREAM`].
    pub fn decode(bytes: &[u8; REQUEST_BYTES]) -> Option<BlobRequest> {
        if bytes[0] != BLOB_STREAM {
            return None;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[1..33]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&bytes[33..]);
        Some(BlobRequest {
            hash,
            offset: u64::from_be_bytes(offset),
        })
    }
}

/// The answer to a [`BlobRequest`], before any chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Chunks follow, from the requested offset to `size`.
    Sending { size: u64 },
    /// Not held; nothing follows.
    NotFound,
    /// The offset is past the blob's end; nothing follows.
    BadOffset,
}

impl Response {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let (status, size) = match *self {
            Response::Sending { size } => (0u8, size),
            Response::NotFound => (1, 0),
            Response::BadOffset => (2, 0),
        };
        let mut out = [0u8; HEADER_BYTES];
        out[0] = status;
        out[1..].copy_from_slice(&size.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<Response, FetchError> {
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[1..]);
        match bytes[0] {
            0 => Ok(Response::Sending {
                size: u64::from_be_bytes(size),
            }),
            1 => Ok(Response::NotFound),
            2 => Ok(Response::BadOffset),
            other => Err(FetchError::UnknownStatus(other)),
        }
    }
}

/// The receiver's account of one blob's chunks: how many bytes were
/// missing and how many arrived. Refuses a chunk before its bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receiving {
    pub offset: u64,
    pub missing: u64,
    pub received: u64,
}

impl Receiving {
    /// Checks the peer's answer against the size the entry announced.
    pub fn start(response: Response, announced: u64, offset: u64) -> Result<Receiving, FetchError> {
        match response {
            Response::NotFound => Err(FetchError::NotFound),
            Response::BadOffset => Err(FetchError::BadOffset(offset)),
            Response::Sending { size } if size != announced => Err(FetchError::SizeMismatch {
                peer: size,
                announced,
            }),
            Response::Sending { size } => Ok(Receiving {
                offset,
                missing: size.saturating_sub(offset),
                received: 0,
            }),
        }
    }

    /// Takes a chunk header of `len` bytes; returns where the chunk goes.
    pub fn chunk(&mut self, len: usize) -> Result<u64, FetchError> {
        if len == 0 || len > CHUNK_BYTES {
            return Err(FetchError::BadChunk(len));
        }
        let sent = self.received + len as u64;
        if sent > self.missing {
            return Err(FetchError::TooManyBytes {
                sent,
                missing: self.missing,
            });
        }
        let at = self.offset + self.received;
        self.received = sent;
        Ok(at)
    }

    /// Checks, once the stream has ended, that nothing is missing.
    pub fn end(&self) -> Result<(), FetchError> {
        if self.received == self.missing {
            Ok(())
        } else {
            Err(FetchError::EndedEarly {
                received: self.received,
                missing: self.missing,
            })
        }
    }
}

/// A server TLS configuration that also accepts media connections.
pub fn with_media_alpn(server: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = server.clone();
    if !config.alpn_protocols.iter().any(|p| p == MEDIA_ALPN) {
        config.alpn_protocols.push(MEDIA_ALPN.to_vec());
    }
    Arc::new(config)
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

/// Serves the peer's blob requests on a media connection until the
/// connection closes, without fetching anything. Each stream is answered
/// on its own task; the transport's stream limit bounds how many run at
/// once. A done stream from the peer is answered; the connection is left
/// for the peer to close.
pub async fn serve_blobs(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
) -> Result<(), quinn::ConnectionError> {
    let (state, _seen) = watch::channel(Serving::default());
    serve_streams(conn.clone(), store, state, Arc::new(Meter::default())).await
}

/// What serving one stream the peer opened came to.
enum Served {
    /// A blob, from the requested offset to its end.
    Blob,
    /// The peer said it is done fetching.
    Done,
    /// Refused, not held, or broken off.
    Nothing,
}

/// What the serving half of a media connection has seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct Serving {
    /// The peer sent a done stream.
    peer_done: bool,
    /// The connection is closed (by either side, or lost).
    closed: bool,
    /// Blobs sent in full.
    blobs_served: u64,
}

/// Progress of the serving half, counted from the stream tasks.
#[derive(Debug, Default)]
struct Meter {
    /// Streams accepted plus chunks sent: what "the peer is not silent"
    /// means.
    events: AtomicU64,
    /// Blob bytes sent.
    bytes_sent: AtomicU64,
}

/// Accepts the peer's streams until the connection closes, each served on
/// its own task, and keeps `state` up to date.
async fn serve_streams(
    conn: Connection,
    store: Arc<dyn BlobStore>,
    state: watch::Sender<Serving>,
    meter: Arc<Meter>,
) -> Result<(), quinn::ConnectionError> {
    let tally = |joined: Result<Served, tokio::task::JoinError>| match joined {
        Ok(Served::Blob) => state.send_modify(|s| s.blobs_served += 1),
        Ok(Served::Done) => state.send_modify(|s| s.peer_done = true),
        Ok(Served::Nothing) | Err(_) => {}
    };
    let mut streams = JoinSet::new();
    let ended = loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    meter.events.fetch_add(1, Ordering::Relaxed);
                    streams.spawn(serve_stream(send, recv, store.clone(), meter.clone()));
                }
                Err(e) => break e,
            },
            Some(joined) = streams.join_next() => tally(joined),
        }
    };
    // The connection is gone, so the streams still running end at their
    // next write; count the ones that had finished.
    while let Some(joined) = streams.join_next().await {
        tally(joined);
    }
    state.send_modify(|s| s.closed = true);
    match ended {
        quinn::ConnectionError::ApplicationClosed(_) | quinn::ConnectionError::LocallyClosed => {
            Ok(())
        }
        e => Err(e),
    }
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    store: Arc<dyn BlobStore>,
    meter: Arc<Meter>,
) -> Served {
    let mut bytes = [0u8; REQUEST_BYTES];
    let kind = match recv.read_exact(&mut bytes[..1]).await {
        Ok(()) => bytes[0],
        Err(_) => 0,
    };
    if kind == DONE_STREAM {
        // The answer is the end of our half: "heard you".
        let _ = send.finish();
        return Served::Done;
    }
    let request = if kind == BLOB_STREAM {
        match recv.read_exact(&mut bytes[1..]).await {
            Ok(()) => BlobRequest::decode(&bytes),
            Err(_) => None,
        }
    } else {
        None
    };
    let Some(request) = request else {
        let _ = send.reset(VarInt::from_u32(RESET_BAD_REQUEST));
        let _ = recv.stop(VarInt::from_u32(RESET_BAD_REQUEST));
        return Served::Nothing;
    };
    serve_blob(send, request, store, &meter).await
}

async fn serve_blob(
    mut send: SendStream,
    BlobRequest { hash, offset }: BlobRequest,
    store: Arc<dyn BlobStore>,
    meter: &Meter,
) -> Served {
    let size = match store.size(&hash) {
        None => {
            let _ = send.write_all(&Response::NotFound.encode()).await;
            let _ = send.finish();
            return Served::Nothing;
        }
        Some(size) if offset > size => {
            let _ = send.write_all(&Response::BadOffset.encode()).await;
            let _ = send.finish();
            return Served::Nothing;
        }
        Some(size) => size,
    };
    if send
        .write_all(&Response::Sending { size }.encode())
        .await
        .is_err()
    {
        return Served::Nothing;
    }
    let mut at = offset;
    while at < size {
        let want = usize::try_from(size - at).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
        let reader = store.clone();
        let chunk = tokio::task::spawn_blocking(move || reader.read_at(&hash, at, want)).await;
        let chunk = match chunk {
            Ok(Ok(chunk)) if !chunk.is_empty() && chunk.len() <= want => chunk,
            // A failed read or a blob that shrank under us: the receiver
            // keeps what it has and resumes from another peer or later.
            _ => {
                let _ = send.reset(VarInt::from_u32(RESET_READ_FAILED));
                return Served::Nothing;
            }
        };
        let len = (chunk.len() as u32).to_be_bytes();
        if send.write_all(&len).await.is_err() || send.write_all(&chunk).await.is_err() {
            return Served::Nothing;
        }
        at += chunk.len() as u64;
        meter.events.fetch_add(1, Ordering::Relaxed);
        meter
            .bytes_sent
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    match send.finish() {
        Ok(()) => Served::Blob,
        Err(_) => Served::Nothing,
    }
}

/// How the peer ended a two-way exchange ([`exchange_blobs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEnd {
    /// It sent a done stream: it fetched all it wanted.
    Done,
    /// It answered this side's done stream with a reset: a peer that only
    /// serves, from before two-way exchanges, which never fetches over
    /// this connection and never says it is done.
    OnlyServes,
    /// It closed the connection (or the connection was lost).
    Closed,
    /// It neither said it was done nor made progress for the idle limit.
    Silent,
}

/// Runs a two-way media exchange on `conn`, whichever side opened it:
/// serves every blob the peer asks for while fetching the `wanted` blobs
/// (as [`fetch_blobs`] does); then tells the peer this side is done and
/// waits until the peer is done too, has closed the connection, turns out
/// to be a serve-only peer, or has made no progress for [`PEER_IDLE`];
/// then closes the connection (code [`CLOSE_DONE`]).
pub async fn exchange_blobs(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    wanted: Vec<([u8; 32], u64)>,
) -> FetchReport {
    exchange_blobs_with(conn, store, wanted, PEER_IDLE, |_, _| {}).await
}

/// [`exchange_blobs`] with the idle limit given and a `progress` callback
/// that sees each fetched blob's result.
pub async fn exchange_blobs_with(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    wanted: Vec<([u8; 32], u64)>,
    peer_idle: Duration,
    progress: impl FnMut(&[u8; 32], &Result<Fetched, FetchError>),
) -> FetchReport {
    let (state, mut seen) = watch::channel(Serving::default());
    let meter = Arc::new(Meter::default());
    let serving = tokio::spawn(serve_streams(
        conn.clone(),
        store.clone(),
        state,
        meter.clone(),
    ));
    let mut report = fetch_blobs(conn, store, wanted, progress).await;
    let end = match tell_done(conn, peer_idle).await {
        Told::Refused => PeerEnd::OnlyServes,
        Told::Heard | Told::Unknown => wait_for_peer(&mut seen, &meter, peer_idle).await,
    };
    conn.close(VarInt::from_u32(CLOSE_DONE), b"done");
    // The close makes the serving loop's accept fail at once; its
    // unfinished streams are dropped with it.
    let _ = serving.await;
    report.served = seen.borrow().blobs_served;
    report.bytes_sent = meter.bytes_sent.load(Ordering::Relaxed);
    report.peer_end = Some(end);
    report
}

/// What came of telling the peer this side is done.
enum Told {
    /// The peer finished its half of the done stream: it heard.
    Heard,
    /// The peer reset the done stream as a bad request: it predates them.
    Refused,
    /// No answer in time, or the connection closed.
    Unknown,
}

async fn tell_done(conn: &Connection, wait: Duration) -> Told {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        send.write_all(&[DONE_STREAM]).await.ok()?;
        let _ = send.finish();
        Some(recv.read_to_end(0).await)
    };
    match tokio::time::timeout(wait, attempt).await {
        Ok(Some(Ok(_))) => Told::Heard,
        Ok(Some(Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))))
            if code == VarInt::from_u32(RESET_BAD_REQUEST) =>
        {
            Told::Refused
        }
        _ => Told::Unknown,
    }
}

/// Waits until the peer is done or the connection closed, or the peer
/// made no progress for `idle`.
async fn wait_for_peer(
    seen: &mut watch::Receiver<Serving>,
    meter: &Meter,
    idle: Duration,
) -> PeerEnd {
    let mut last = meter.events.load(Ordering::Relaxed);
    loop {
        let now = *seen.borrow_and_update();
        if now.peer_done {
            return PeerEnd::Done;
        }
        if now.closed {
            return PeerEnd::Closed;
        }
        tokio::select! {
            changed = seen.changed() => {
                if changed.is_err() {
                    return PeerEnd::Closed;
                }
            }
            () = tokio::time::sleep(idle) => {
                let events = meter.events.load(Ordering::Relaxed);
                if events == last {
                    return PeerEnd::Silent;
                }
                last = events;
            }
        }
    }
}

/// One blob fetched and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub hash: [u8; 32],
    pub size: u64,
    /// Where the transfer started: the bytes already kept from an earlier,
    /// interrupted download.
    pub resumed_from: u64,
    /// Blob bytes that crossed the wire for it.
    pub bytes_received: u64,
}

/// What [`fetch_blobs`] or [`exchange_blobs`] did.
#[derive(Debug, Default)]
pub struct FetchReport {
    pub fetched: Vec<Fetched>,
    pub failed: Vec<([u8; 32], FetchError)>,
    /// Blobs sent in full to the peer (exchanges only).
    pub served: u64,
    /// Blob bytes sent to the peer (exchanges only).
    pub bytes_sent: u64,
    /// How the peer ended the exchange (exchanges only).
    pub peer_end: Option<PeerEnd>,
}

impl FetchReport {
    /// Blob bytes received, over all blobs (failed ones included).
    pub fn bytes_received(&self) -> u64 {
        self.fetched.iter().map(|f| f.bytes_received).sum()
    }
}

/// Fetches the `wanted` blobs (hash and the size their entry announced)
/// that `store` does not hold, one stream per blob, at most
/// [`MAX_CONCURRENT_FETCHES`] at once, each from where an earlier download
/// stopped. `progress` sees each blob's result as it completes. A hash
/// listed twice is fetched once (the first size listed).
pub async fn fetch_blobs(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    wanted: Vec<([u8; 32], u64)>,
    mut progress: impl FnMut(&[u8; 32], &Result<Fetched, FetchError>),
) -> FetchReport {
    let mut seen = std::collections::HashSet::new();
    let mut queue = wanted
        .into_iter()
        .filter(|(hash, _)| seen.insert(*hash) && !store.has(hash))
        .collect::<Vec<_>>()
        .into_iter();
    let mut running = JoinSet::new();
    let mut hashes = std::collections::HashMap::new();
    let mut report = FetchReport::default();
    loop {
        while running.len() < MAX_CONCURRENT_FETCHES {
            let Some((hash, size)) = queue.next() else {
                break;
            };
            let (conn, store) = (conn.clone(), store.clone());
            let task = running.spawn(async move { fetch_one(&conn, store, hash, size).await });
            hashes.insert(task.id(), hash);
        }
        let (id, result) = match running.join_next_with_id().await {
            None => break,
            Some(Ok((id, result))) => (id, result),
            // A fetch task panicked; its partial download stays for the
            // next try.
            Some(Err(e)) => (e.id(), Err(FetchError::Store(format!("fetch task: {e}")))),
        };
        let Some(hash) = hashes.remove(&id) else {
            continue;
        };
        progress(&hash, &result);
        match result {
            Ok(fetched) => report.fetched.push(fetched),
            Err(e) => report.failed.push((hash, e)),
        }
    }
    report
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FetchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FetchError::Store(e.to_string()))
}

async fn fetch_one(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    hash: [u8; 32],
    size: u64,
) -> Result<Fetched, FetchError> {
    if !(1..=MAX_MEDIA_BYTES).contains(&size) {
        return Err(FetchError::BadSize(size));
    }
    let s = store.clone();
    let mut offset = blocking(move || s.partial_len(&hash)).await?;
    if offset > size {
        // Left by a download for a different announced size; useless.
        let s = store.clone();
        blocking(move || s.discard_partial(&hash))
            .await?
            .map_err(|e| FetchError::Store(e.to_string()))?;
        offset = 0;
    }
    let stream_err = |e: &dyn std::fmt::Display| FetchError::Stream(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(&BlobRequest { hash, offset }.encode())
        .await
        .map_err(|e| stream_err(&e))?;
    let _ = send.finish();
    let mut header = [0u8; HEADER_BYTES];
    recv.read_exact(&mut header)
        .await
        .map_err(|e| stream_err(&e))?;
    let response = Response::decode(&header)?;
    if response == Response::BadOffset {
        // The peer's copy is shorter than what we kept: start over.
        let s = store.clone();
        let _ = blocking(move || s.discard_partial(&hash)).await;
    }
    let mut receiving = Receiving::start(response, size, offset)?;
    loop {
        let mut len = [0u8; 4];
        match recv.read_exact(&mut len).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => break,
            Err(e) => return Err(stream_err(&e)),
        }
        let len = u32::from_be_bytes(len) as usize;
        let at = receiving.chunk(len)?;
        let mut chunk = vec![0u8; len];
        recv.read_exact(&mut chunk)
            .await
            .map_err(|e| stream_err(&e))?;
        let s = store.clone();
        blocking(move || s.append_partial(&hash, at, &chunk))
            .await?
            .map_err(|e| FetchError::Store(e.to_string()))?;
    }
    receiving.end()?;
    let s = store.clone();
    blocking(move || s.finish_partial(&hash, size))
        .await?
        .map_err(FetchError::Refused)?;
    Ok(Fetched {
        hash,
        size,
        resumed_from: offset,
        bytes_received: receiving.received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_type_hash_offset() {
        let request = BlobRequest {
            hash: [0x11; 32],
            offset: 0x1_0000,
        };
        let bytes = request.encode();
        assert_eq!(
            hex::encode(bytes),
            format!("42{}0000000000010000", "11".repeat(32))
        );
        assert_eq!(BlobRequest::decode(&bytes), Some(request));
    }

    #[test]
    fn a_session_stream_is_not_a_blob_request() {
        // A session stream starts with its first frame's 4-byte length.
        let mut bytes = [0u8; REQUEST_BYTES];
        bytes[..4].copy_from_slice(&42u32.to_be_bytes());
        assert_eq!(BlobRequest::decode(&bytes), None);
    }

    #[test]
    fn response_headers_round_trip_and_unknown_status_is_refused() {
        let sending = Response::Sending { size: 300_000 };
        assert_eq!(hex::encode(sending.encode()), "0000000000000493e0");
        for r in [sending, Response::NotFound, Response::BadOffset] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
        assert_eq!(
            hex::encode(Response::NotFound.encode()),
            "010000000000000000"
        );
        assert!(matches!(
            Response::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(FetchError::UnknownStatus(9))
        ));
    }

    #[test]
    fn the_receiver_takes_exactly_the_missing_bytes() {
        let mut r = Receiving::start(Response::Sending { size: 100_000 }, 100_000, 30_000).unwrap();
        assert_eq!(r.missing, 70_000);
        assert_eq!(r.chunk(CHUNK_BYTES).unwrap(), 30_000);
        assert!(
            matches!(r.end(), Err(FetchError::EndedEarly { received, missing: 70_000 }) if received == CHUNK_BYTES as u64)
        );
        assert!(matches!(
            r.chunk(70_000 - CHUNK_BYTES + 1),
            Err(FetchError::TooManyBytes {
                sent: 70_001,
                missing: 70_000
            })
        ));
        assert_eq!(
            r.chunk(70_000 - CHUNK_BYTES).unwrap(),
            30_000 + CHUNK_BYTES as u64
        );
        r.end().unwrap();
    }

    #[test]
    fn chunks_are_bounded_before_they_are_read() {
        let mut r = Receiving::start(Response::Sending { size: 1 << 20 }, 1 << 20, 0).unwrap();
        assert!(matches!(r.chunk(0), Err(FetchError::BadChunk(0))));
        assert!(matches!(
            r.chunk(CHUNK_BYTES + 1),
            Err(FetchError::BadChunk(n)) if n == CHUNK_BYTES + 1
        ));
        assert_eq!(r.received, 0);
    }

    #[test]
    fn the_peer_cannot_change_the_announced_size() {
        assert!(matches!(
            Receiving::start(Response::Sending { size: 11 }, 10, 0),
            Err(FetchError::SizeMismatch {
                peer: 11,
                announced: 10
            })
        ));
        assert!(matches!(
            Receiving::start(Response::NotFound, 10, 0),
            Err(FetchError::NotFound)
        ));
        assert!(matches!(
            Receiving::start(Response::BadOffset, 10, 4),
            Err(FetchError::BadOffset(4))
        ));
        // A resumed download that already holds every byte expects none.
        let r = Receiving::start(Response::Sending { size: 10 }, 10, 10).unwrap();
        r.end().unwrap();
    }

    /// Blobs in memory, checked like the disk store: size and SHA-256
    /// before a download becomes a blob.
    #[derive(Default)]
    struct MemBlobs {
        blobs: std::sync::Mutex<std::collections::HashMap<[u8; 32], Vec<u8>>>,
        partials: std::sync::Mutex<std::collections::HashMap<[u8; 32], Vec<u8>>>,
    }

    impl MemBlobs {
        fn with(blobs: &[(&[u8; 32], &[u8])]) -> Arc<MemBlobs> {
            let store = MemBlobs::default();
            for (hash, bytes) in blobs {
                store.blobs.lock().unwrap().insert(**hash, bytes.to_vec());
            }
            Arc::new(store)
        }

        fn get(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
            self.blobs.lock().unwrap().get(hash).cloned()
        }
    }

    impl BlobStore for MemBlobs {
        fn has(&self, hash: &[u8; 32]) -> bool {
            self.blobs.lock().unwrap().contains_key(hash)
        }
        fn size(&self, hash: &[u8; 32]) -> Option<u64> {
            self.get(hash).map(|b| b.len() as u64)
        }
        fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>> {
            let blob = self.get(hash).ok_or(io::ErrorKind::NotFound)?;
            let start = (offset as usize).min(blob.len());
            let end = (start + max).min(blob.len());
            Ok(blob[start..end].to_vec())
        }
        fn partial_len(&self, hash: &[u8; 32]) -> u64 {
            self.partials
                .lock()
                .unwrap()
                .get(hash)
                .map_or(0, |p| p.len() as u64)
        }
        fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()> {
            let mut partials = self.partials.lock().unwrap();
            let partial = partials.entry(*hash).or_default();
            if partial.len() as u64 != offset {
                return Err(io::Error::other("out of step"));
            }
            partial.extend_from_slice(bytes);
            Ok(())
        }
        fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String> {
            use sha2::Digest;
            let bytes = self
                .partials
                .lock()
                .unwrap()
                .remove(hash)
                .unwrap_or_default();
            if bytes.len() as u64 != expected_size {
                return Err(format!("{} bytes, expected {expected_size}", bytes.len()));
            }
            let actual: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            if actual != *hash {
                return Err(format!("found sha256 {}", hex::encode(actual)));
            }
            self.blobs.lock().unwrap().insert(*hash, bytes);
            Ok(())
        }
        fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()> {
            self.partials.lock().unwrap().remove(hash);
            Ok(())
        }
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    }

    /// `n` bytes of a deterministic pattern, tagged so two blobs differ.
    fn blob(tag: u8, n: usize) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect()
    }

    /// Two enrolled peers of one test CA: an acceptor endpoint offering
    /// media and a client endpoint.
    struct Link {
        server: Endpoint,
        client: Endpoint,
        client_tls: Arc<rustls::ClientConfig>,
    }

    impl Link {
        fn new() -> Link {
            use sentinel_certs::{Ca, FreshnessPolicy, RevocationHandle, SigningKey};
            use sentinel_schema::DeviceRole;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let day = 24 * 3600 * 1000;
            let ca = Ca::create(
                "Media test CA",
                now - day,
                now + day,
                SigningKey::from_bytes(&[1; 32]),
            )
            .unwrap();
            let enroll = |name: &str, seed: u8| {
                ca.enroll(
                    DeviceRole::Node,
                    name,
                    SigningKey::from_bytes(&[seed; 32]),
                    now - day,
                    now + day,
                    now,
                )
                .unwrap()
            };
            let (a, b) = (enroll("peer-a", 2), enroll("peer-b", 3));
            let revocations = RevocationHandle::empty();
            let lenient = FreshnessPolicy::Lenient;
            let server_tls = sentinel_certs::server_config(&a, &revocations, lenient).unwrap();
            let a_client = sentinel_certs::client_config(&a, &revocations, lenient).unwrap();
            let client_tls = sentinel_certs::client_config(&b, &revocations, lenient).unwrap();
            let server = crate::quic::server_endpoint(
                "127.0.0.1:0".parse().unwrap(),
                with_media_alpn(&server_tls),
                a_client,
            )
            .unwrap();
            let client =
                crate::quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client_tls.clone())
                    .unwrap();
            Link {
                server,
                client,
                client_tls,
            }
        }

        /// A media connection, as both sides see it.
        async fn connect(&self) -> (Connection, Connection) {
            let addr = self.server.local_addr().unwrap();
            let (client, server) =
                tokio::join!(connect_media(&self.client, addr, &self.client_tls), async {
                    self.server.accept().await.unwrap().await.unwrap()
                });
            let client = client.unwrap();
            assert!(is_media_connection(&server));
            (client, server)
        }
    }

    const HANG: Duration = Duration::from_secs(20);

    #[tokio::test(flavor = "multi_thread")]
    async fn both_sides_fetch_and_serve_on_one_connection() {
        let link = Link::new();
        let (x, y) = (blob(1, 150_000), blob(2, 70_000));
        let (hx, hy) = (sha(&x), sha(&y));
        let a = MemBlobs::with(&[(&hx, &x)]);
        let b = MemBlobs::with(&[(&hy, &y)]);
        let (client, server) = link.connect().await;
        let (ra, rb) = tokio::time::timeout(HANG, async {
            tokio::join!(
                exchange_blobs(&client, a.clone(), vec![(hy, y.len() as u64)]),
                exchange_blobs(&server, b.clone(), vec![(hx, x.len() as u64)]),
            )
        })
        .await
        .expect("the exchange hung");
        assert_eq!(a.get(&hy).unwrap(), y);
        assert_eq!(b.get(&hx).unwrap(), x);
        for (r, got, sent) in [(&ra, &y, &x), (&rb, &x, &y)] {
            assert!(r.failed.is_empty(), "{r:?}");
            assert_eq!(r.fetched.len(), 1);
            assert_eq!(r.bytes_received(), got.len() as u64);
            assert_eq!((r.served, r.bytes_sent), (1, sent.len() as u64), "{r:?}");
        }
        // Whoever heard the other's done first closed; the other saw
        // either the done or the close.
        for r in [&ra, &rb] {
            assert!(
                matches!(r.peer_end, Some(PeerEnd::Done | PeerEnd::Closed)),
                "{r:?}"
            );
        }
        assert!(
            ra.peer_end == Some(PeerEnd::Done) || rb.peer_end == Some(PeerEnd::Done),
            "{ra:?} {rb:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_side_that_wants_nothing_still_serves_until_the_peer_is_done() {
        let link = Link::new();
        let x = blob(3, 200_000);
        let hx = sha(&x);
        let a = MemBlobs::with(&[(&hx, &x)]);
        let b = MemBlobs::with(&[]);
        let (client, server) = link.connect().await;
        let (ra, rb) = tokio::time::timeout(HANG, async {
            tokio::join!(
                exchange_blobs(&client, a.clone(), Vec::new()),
                exchange_blobs(&server, b.clone(), vec![(hx, x.len() as u64)]),
            )
        })
        .await
        .expect("the exchange hung");
        assert_eq!(b.get(&hx).unwrap(), x);
        assert_eq!(ra.served, 1, "{ra:?}");
        assert!(ra.fetched.is_empty() && ra.failed.is_empty());
        assert_eq!(rb.fetched.len(), 1, "{rb:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bytes_that_do_not_match_their_hash_are_refused_and_not_stored() {
        let link = Link::new();
        let good = blob(4, 100_000);
        let h = sha(&good);
        let mut rotten = good.clone();
        rotten[99_000] ^= 1;
        // The peer holds other bytes under the hash.
        let a = MemBlobs::with(&[(&h, &rotten)]);
        let b = MemBlobs::with(&[]);
        let (client, server) = link.connect().await;
        let (_, rb) = tokio::time::timeout(HANG, async {
            tokio::join!(
                exchange_blobs(&client, a.clone(), Vec::new()),
                exchange_blobs(&server, b.clone(), vec![(h, good.len() as u64)]),
            )
        })
        .await
        .expect("the exchange hung");
        assert!(rb.fetched.is_empty(), "{rb:?}");
        match &rb.failed[..] {
            [(hash, FetchError::Refused(reason))] => {
                assert_eq!(*hash, h);
                assert!(reason.contains("found sha256"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!b.has(&h));
        assert_eq!(b.partial_len(&h), 0);
    }

    /// A serve-only peer as it was before two-way exchanges: it takes
    /// every stream as a 41-byte blob request and resets anything else.
    async fn serve_only_as_before(conn: Connection, store: Arc<dyn BlobStore>) {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let store = store.clone();
            tokio::spawn(async move {
                let mut bytes = [0u8; REQUEST_BYTES];
                let request = match recv.read_exact(&mut bytes).await {
                    Ok(()) => BlobRequest::decode(&bytes),
                    Err(_) => None,
                };
                let Some(request) = request else {
                    let _ = send.reset(VarInt::from_u32(RESET_BAD_REQUEST));
                    let _ = recv.stop(VarInt::from_u32(RESET_BAD_REQUEST));
                    return;
                };
                serve_blob(send, request, store, &Meter::default()).await;
            });
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_serve_only_peer_ends_the_exchange_without_waiting() {
        let link = Link::new();
        let x = blob(5, 80_000);
        let hx = sha(&x);
        let old = MemBlobs::with(&[(&hx, &x)]);
        let b = MemBlobs::with(&[]);
        let (client, server) = link.connect().await;
        tokio::spawn(serve_only_as_before(server, old));
        let started = std::time::Instant::now();
        let r = tokio::time::timeout(
            HANG,
            exchange_blobs(&client, b.clone(), vec![(hx, x.len() as u64)]),
        )
        .await
        .expect("the exchange hung");
        assert_eq!(r.fetched.len(), 1, "{r:?}");
        assert_eq!(b.get(&hx).unwrap(), x);
        assert_eq!(r.peer_end, Some(PeerEnd::OnlyServes));
        assert!(started.elapsed() < PEER_IDLE, "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_silent_peer_cannot_hold_the_connection_open() {
        let link = Link::new();
        let b = MemBlobs::with(&[]);
        let (client, server) = link.connect().await;
        // The peer keeps the connection but never answers a stream.
        let idle = Duration::from_millis(300);
        let r = tokio::time::timeout(
            HANG,
            exchange_blobs_with(&client, b, Vec::new(), idle, |_, _| {}),
        )
        .await
        .expect("the exchange hung");
        assert_eq!(r.peer_end, Some(PeerEnd::Silent));
        assert!(
            matches!(
                tokio::time::timeout(HANG, server.closed()).await,
                Ok(quinn::ConnectionError::ApplicationClosed(_))
            ),
            "the connection is closed"
        );
    }

    #[test]
    fn the_vectors_of_protocol_md_are_what_the_code_sends() {
        let doc: String = include_str!("../../docs/protocol.md")
            .split("### 2.10 Media streams")
            .nth(1)
            .expect("section 2.10")
            .split_whitespace()
            .collect();
        let request = BlobRequest {
            hash: [0x11; 32],
            offset: 65_536,
        };
        for bytes in [
            request.encode().to_vec(),
            Response::Sending { size: 300_000 }.encode().to_vec(),
            Response::NotFound.encode().to_vec(),
            (CHUNK_BYTES as u32).to_be_bytes().to_vec(),
        ] {
            let hex = hex::encode(bytes);
            assert!(doc.contains(&hex), "{hex} is not in protocol.md 2.10");
        }
    }
}
