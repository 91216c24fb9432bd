//! The two-way media exchange: on one connection, whichever side opened
//! it, serve every blob the peer asks for while fetching the ones wanted,
//! then say so and wait (bounded) for the peer to be done too.
//!
//! Never does: decide which blobs are wanted (the caller does, from the
//! `media_attached` entries it holds).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, VarInt};
use tokio::sync::watch;

use super::fetch::{fetch_blobs, FetchError, FetchReport, Fetched, PeerEnd};
use super::serve::{serve_streams, Meter, Serving};
use super::wire::{DONE_STREAM, RESET_BAD_REQUEST};
use crate::blobs::BlobStore;

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
