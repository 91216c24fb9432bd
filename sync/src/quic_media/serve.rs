//! Serving blobs: every stream the peer opens on a media connection is
//! answered on its own task, a blob request with the blob's bytes from the
//! requested offset, a done stream with the end of our half. Under a
//! link's cap ([`Pace`]) the bytes go in slices of the cap, each after
//! the session's waiting frames.
//!
//! Never does: fetch (`fetch.rs`), or close the connection: the peer, or
//! the two-way exchange (`exchange.rs`), does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::wire::{
    BlobRequest, Response, BLOB_STREAM, CHUNK_BYTES, DONE_STREAM, REQUEST_BYTES, RESET_BAD_REQUEST,
    RESET_READ_FAILED,
};
use super::MediaProgress;
use crate::blobs::BlobStore;
use crate::quic_pace::Pace;

/// Serves the peer's blob requests on a media connection until the
/// connection closes, without fetching anything. Each stream is answered
/// on its own task; the transport's stream limit bounds how many run at
/// once. A done stream from the peer is answered; the connection is left
/// for the peer to close.
pub async fn serve_blobs(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
) -> Result<(), quinn::ConnectionError> {
    serve_blobs_paced(conn, store, None).await
}

/// [`serve_blobs`] under a link's bandwidth cap (when given): blob bytes
/// wait for it, and for the session's frames on the same [`Pace`].
pub async fn serve_blobs_paced(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    pace: Option<Pace>,
) -> Result<(), quinn::ConnectionError> {
    let (state, _seen) = watch::channel(Serving::default());
    let meter = Arc::new(Meter {
        pace,
        ..Meter::default()
    });
    serve_streams(conn.clone(), store, state, meter).await
}

/// What serving one stream the peer opened came to.
pub(super) enum Served {
    /// A blob, from the requested offset to its end.
    Blob,
    /// The peer said it is done fetching.
    Done,
    /// Refused, not held, or broken off.
    Nothing,
}

/// What the serving half of a media connection has seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Serving {
    /// The peer sent a done stream.
    pub(super) peer_done: bool,
    /// The connection is closed (by either side, or lost).
    pub(super) closed: bool,
    /// Blobs sent in full.
    pub(super) blobs_served: u64,
}

/// Progress of the serving half, counted from the stream tasks, and the
/// cap they keep to.
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// Streams accepted plus chunks sent: what "the peer is not silent"
    /// means.
    pub(super) events: AtomicU64,
    /// Blob bytes sent.
    pub(super) bytes_sent: AtomicU64,
    /// The link's cap, if any.
    pub(super) pace: Option<Pace>,
    /// The caller's running count, if any.
    pub(super) progress: Option<Arc<MediaProgress>>,
}

/// Accepts the peer's streams until the connection closes, each served on
/// its own task, and keeps `state` up to date.
pub(super) async fn serve_streams(
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

pub(super) async fn serve_blob(
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
    let header = Response::Sending { size }.encode();
    if let Some(pace) = &meter.pace {
        pace.media(header.len()).await;
    }
    if send.write_all(&header).await.is_err() {
        return Served::Nothing;
    }
    // Under a cap, chunks are slices of it, so that the session's frames
    // never queue behind more than a slice (chunks of any length up to
    // `CHUNK_BYTES` are valid).
    let most = meter
        .pace
        .as_ref()
        .map_or(CHUNK_BYTES, |p| p.media_slice().min(CHUNK_BYTES));
    let mut at = offset;
    while at < size {
        let want = usize::try_from(size - at).map_or(most, |n| n.min(most));
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
        if let Some(pace) = &meter.pace {
            pace.media(len.len() + chunk.len()).await;
        }
        if send.write_all(&len).await.is_err() || send.write_all(&chunk).await.is_err() {
            return Served::Nothing;
        }
        at += chunk.len() as u64;
        meter.events.fetch_add(1, Ordering::Relaxed);
        meter
            .bytes_sent
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Some(progress) = &meter.progress {
            progress
                .bytes_sent
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
    match send.finish() {
        Ok(()) => Served::Blob,
        Err(_) => Served::Nothing,
    }
}
