//! The two-way media exchange: on one connection, whichever side opened
//! it, serve every blob the peer asks for while fetching the ones wanted,
//! then say so and wait (bounded) for the peer to be done too.
//!
//! Never does: decide which blobs are wanted (the caller does, from the
//! `media_attached` entries it holds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, VarInt};
use tokio::sync::watch;

use super::fetch::{fetch_blobs_along, Along, FetchError, FetchReport, Fetched, PeerEnd};
use super::serve::{serve_streams, Meter, Serving};
use super::wire::{DONE_STREAM, RESET_BAD_REQUEST};
use crate::blobs::BlobStore;
use crate::quic_pace::Pace;

/// How long a side that has finished its own fetches waits for a peer that
/// has not said it is done and makes no progress (opens no stream, takes
/// no chunk). A slow transfer is not silence: every chunk resets the wait.
pub const PEER_IDLE: Duration = Duration::from_secs(10);
/// Close code of a media connection both sides are done with.
pub const CLOSE_DONE: u32 = 0;

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
    let options = MediaOptions {
        peer_idle,
        ..MediaOptions::default()
    };
    exchange_blobs_opts(conn, store, wanted, options, progress).await
}

/// How a media exchange runs ([`exchange_blobs_opts`]).
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// How long to wait for a peer that is not done and makes no progress
    /// ([`PEER_IDLE`] by default).
    pub peer_idle: Duration,
    /// The link's bandwidth cap, the same [`Pace`] its session was given:
    /// blob bytes and requests wait for it, and for the session's frames.
    pub pace: Option<Pace>,
    /// A running count of the blob bytes each way, for people watching a
    /// long exchange (read it from another task while this one runs).
    pub progress: Option<Arc<MediaProgress>>,
}

impl Default for MediaOptions {
    fn default() -> MediaOptions {
        MediaOptions {
            peer_idle: PEER_IDLE,
            pace: None,
            progress: None,
        }
    }
}

/// Blob bytes a media exchange has moved so far, counted as they move.
/// The bytes still to come when it starts are
/// [`super::bytes_to_fetch`].
#[derive(Debug, Default)]
pub struct MediaProgress {
    pub(super) bytes_received: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
}

impl MediaProgress {
    /// Blob bytes received and kept (appended to their downloads).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    /// Blob bytes sent to the peer.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
}

/// [`exchange_blobs`] with [`MediaOptions`] (idle limit, the link's cap, a
/// running count) and a `progress` callback that sees each fetched
/// blob's result.
///
/// Entries before media: start it once the link's session has caught up
/// (`SessionEvent::CaughtUp`, or `quic::drive` with `Until::CaughtUp`
/// returning), as the blobs wanted are the ones the entries name. A live
/// session may keep running beside it: with the same [`Pace`] on both,
/// its frames go first.
pub async fn exchange_blobs_opts(
    conn: &Connection,
    store: Arc<dyn BlobStore>,
    wanted: Vec<([u8; 32], u64)>,
    options: MediaOptions,
    progress: impl FnMut(&[u8; 32], &Result<Fetched, FetchError>),
) -> FetchReport {
    let MediaOptions {
        peer_idle,
        pace,
        progress: counter,
    } = options;
    let (state, mut seen) = watch::channel(Serving::default());
    let meter = Arc::new(Meter {
        pace: pace.clone(),
        progress: counter.clone(),
        ..Meter::default()
    });
    let serving = tokio::spawn(serve_streams(
        conn.clone(),
        store.clone(),
        state,
        meter.clone(),
    ));
    let along = Along {
        pace,
        progress: counter,
    };
    let mut report = fetch_blobs_along(conn, store, wanted, along, progress).await;
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
