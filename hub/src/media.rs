//! Media blobs on a media connection: the two-way exchange of
//! `sentinel_sync::quic_media::exchange_blobs` between the hub's blob
//! folder and a node.
//!
//! A node opens a media connection (ALPN `sentinel-media/1`) after its
//! session; the hub fetches from it every blob its log names that is not
//! in the folder ([`wanted_media`], from [`PgStore::media_named`]),
//! verified before it is stored, and serves the node whatever it asks
//! for. The outcome is one [`MediaReport`], which the server logs.
//!
//! Never does: accept connections (`crate::server` does, and hands media
//! connections here), or store a blob unverified.

use std::sync::Arc;
use std::time::Instant;

use sentinel_sync::blobs::MediaStore;
use sentinel_sync::quic_media;

use crate::store::PgStore;

/// How one media connection ended, for logs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MediaReport {
    pub peer: String,
    pub peer_name: String,
    /// Blobs the hub lacked when the exchange began.
    pub wanted: u64,
    /// Blobs fetched from the peer, verified and stored.
    pub fetched: u64,
    pub bytes_received: u64,
    /// Blobs that could not be fetched: hex hash and reason.
    pub failed: Vec<String>,
    /// Blobs the peer fetched from the hub, in full.
    pub served: u64,
    pub bytes_sent: u64,
    /// How the peer ended the exchange.
    pub peer_end: String,
    /// Why the hub could not tell what it wants (it still served).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The two-way blob exchange on a media connection: fetch what the hub
/// wants from the peer, serve what the peer asks for. `blobs` is the
/// hub's folder; `None` (an endpoint that offered media without one)
/// closes the connection.
pub(crate) async fn exchange(
    store: &PgStore,
    blobs: Option<Arc<MediaStore>>,
    conn: &quinn::Connection,
    mut m: MediaReport,
    started: Instant,
) -> MediaReport {
    let Some(blobs) = blobs else {
        conn.close(quinn::VarInt::from_u32(0), b"no media here");
        m.error = Some("the hub keeps no media".into());
        return m;
    };
    let wanted = match wanted_media(store, &blobs).await {
        Ok(wanted) => wanted,
        Err(e) => {
            // Still serve: what the hub holds is on disk, not in the database.
            m.error = Some(e);
            Vec::new()
        }
    };
    m.wanted = wanted.len() as u64;
    let report = quic_media::exchange_blobs(conn, blobs, wanted).await;
    m.fetched = report.fetched.len() as u64;
    m.bytes_received = report.bytes_received();
    m.failed = report
        .failed
        .iter()
        .map(|(hash, e)| format!("{}: {e}", hex::encode(hash)))
        .collect();
    m.served = report.served;
    m.bytes_sent = report.bytes_sent;
    m.peer_end = report
        .peer_end
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    m.duration_ms = started.elapsed().as_millis() as u64;
    m
}

/// The blobs the log names that the folder does not hold, with the size
/// their entry announced.
pub async fn wanted_media(
    store: &PgStore,
    blobs: &Arc<MediaStore>,
) -> Result<Vec<([u8; 32], u64)>, String> {
    let named = store.media_named().await.map_err(|e| e.to_string())?;
    let blobs = blobs.clone();
    tokio::task::spawn_blocking(move || {
        named
            .into_iter()
            .filter(|(hash, _)| !blobs.contains(hash))
            .collect()
    })
    .await
    .map_err(|e| format!("checking the media folder: {e}"))
}
