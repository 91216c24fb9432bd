//! Fetching blobs over a media connection: one bidirectional stream per
//! blob, a few at once, each resumed from where an earlier download
//! stopped and verified by the store before it becomes a blob. Also what
//! a fetch (or a two-way exchange) reports.
//!
//! Never does: serve the peer (`serve.rs`), or decide what the bytes of a
//! stream mean (`wire.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::Connection;
use sentinel_schema::limits::MAX_MEDIA_BYTES;
use tokio::task::JoinSet;

use super::wire::{BlobRequest, Receiving, Response, WireError, HEADER_BYTES, MEDIA_ALPN};
use super::MediaProgress;
use crate::blobs::BlobStore;
use crate::quic_pace::Pace;

/// Blob streams a fetcher keeps open at once. The transport allows four
/// bidirectional streams per connection; one is left spare (for the done
/// stream).
pub const MAX_CONCURRENT_FETCHES: usize = 3;

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
    /// The peer's answer, or its chunks, do not fit the blob.
    #[error(transparent)]
    Peer(#[from] WireError),
    /// The local store failed.
    #[error("store: {0}")]
    Store(String),
    /// The finished download failed verification and was discarded.
    #[error("refused: {0}")]
    Refused(String),
}

/// How the peer ended a two-way exchange ([`super::exchange_blobs`]).
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

/// What [`fetch_blobs`] or [`super::exchange_blobs`] did.
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
    progress: impl FnMut(&[u8; 32], &Result<Fetched, FetchError>),
) -> FetchReport {
    fetch_blobs_along(conn, store, wanted, Along::default(), progress).await
}

/// What a fetch keeps to and counts besides its report: the link's cap
/// (for its requests) and the caller's running byte count.
#[derive(Debug, Clone, Default)]
pub(super) struct Along {
    pub(super) pace: Option<Pace>,
    pub(super) progress: Option<Arc<MediaProgress>>,
}

/// The blob bytes still to come for `wanted`: each blob's size less what
/// an earlier, interrupted download kept (blobs held count nothing). The
/// whole of a media exchange's progress, for [`crate::progress::Eta`]
/// with [`MediaProgress::bytes_received`]. Reads the store's partial
/// downloads: call it off the async threads for a long list.
pub fn bytes_to_fetch(store: &dyn BlobStore, wanted: &[([u8; 32], u64)]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    wanted
        .iter()
        .filter(|(hash, _)| seen.insert(*hash) && !store.has(hash))
        .map(|(hash, size)| {
            let kept = store.partial_len(hash);
            if kept > *size {
                *size
            } else {
                size - kept
            }
        })
        .sum()
}

pub(super) async fn fetch_blobs_along(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    wanted: Vec<([u8; 32], u64)>,
    along: Along,
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
            let (conn, store, along) = (conn.clone(), store.clone(), along.clone());
            let task =
                running.spawn(async move { fetch_one(&conn, store, hash, size, &along).await });
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
    along: &Along,
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
    let request = BlobRequest { hash, offset }.encode();
    if let Some(pace) = &along.pace {
        pace.media(request.len()).await;
    }
    send.write_all(&request).await.map_err(|e| stream_err(&e))?;
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
        if let Some(progress) = &along.progress {
            progress
                .bytes_received
                .fetch_add(len as u64, std::sync::atomic::Ordering::Relaxed);
        }
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
