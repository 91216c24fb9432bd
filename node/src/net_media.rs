//! Media blobs between peers: which blobs the node lacks, and the two-way
//! exchange after a sync session in which the node fetches those from the
//! peer and serves the peer whatever it asks for.
//!
//! The wire is `sentinel-sync`'s [`quic_media`] (its own QUIC connection,
//! ALPN `sentinel-media/1`, [`quic_media::exchange_blobs`] on both sides);
//! the node's [`MediaStore`](crate::media::MediaStore) is its
//! [`BlobStore`](quic_media::BlobStore), with unfinished downloads kept
//! under `media/partial/` so a broken transfer resumes. A blob is wanted
//! when a `media_attached` entry in the log names it (the `event_media`
//! view) and the store does not hold it. A blob a redaction erased is
//! never wanted, served nor accepted (`docs/protocol.md` 1.6): the
//! exchange sees the store through [`Unerased`], and a blob a redaction
//! learnt during the exchange erased is removed once it ends.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_sync::quic_media::{self, BlobStore, FetchError, FetchReport};

use crate::node::{Node, NodeError};

/// Blobs that entries in the log name and the node does not hold, with
/// the size their entry announced, in hash order. A hash announced with
/// two sizes (one of them necessarily false) is listed once, with the
/// smaller size.
pub fn wanted(node: &Node) -> Result<Vec<([u8; 32], u64)>, NodeError> {
    let mut out: Vec<([u8; 32], u64)> = Vec::new();
    for (hash, size) in node.store().media_named()? {
        if out.last().is_some_and(|(h, _)| *h == hash) || node.media().contains(&hash) {
            continue;
        }
        out.push((hash, size));
    }
    Ok(out)
}

/// A blob that could not be fetched, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedBlob {
    /// Hex SHA-256.
    pub hash: String,
    pub reason: String,
}

/// What the media exchange with one peer did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MediaSummary {
    /// Blobs the node lacked when the exchange began.
    pub wanted: u64,
    /// Blobs fetched, verified and stored.
    pub fetched: u64,
    /// Blob bytes received (resumed downloads count only the rest).
    pub bytes_received: u64,
    pub failed: Vec<FailedBlob>,
    /// Blobs the peer fetched from this node, in full.
    pub served: u64,
    /// Blob bytes sent to the peer.
    pub bytes_sent: u64,
    /// Why no blob could be exchanged at all (no media connection).
    pub error: Option<String>,
}

impl MediaSummary {
    fn add(&mut self, report: &FetchReport) {
        self.fetched = report.fetched.len() as u64;
        self.bytes_received = report.bytes_received();
        self.served = report.served;
        self.bytes_sent = report.bytes_sent;
        self.failed = report
            .failed
            .iter()
            .map(|(hash, e): &([u8; 32], FetchError)| FailedBlob {
                hash: hex::encode(hash),
                reason: e.to_string(),
            })
            .collect();
    }
}

/// The server TLS configuration for `listen` (sessions and media), from
/// the sessions' one.
pub fn server_config(sessions: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    quic_media::with_media_alpn(sessions)
}

/// What the node brings to a media exchange.
struct Prepared {
    /// See [`wanted`].
    wanted: Vec<([u8; 32], u64)>,
    /// Whether the log names any media at all: if not, the node can
    /// neither want a blob nor hold one a peer could want.
    any: bool,
    media: Arc<Unerased>,
}

/// The node's blob folder as a media exchange sees it: a blob a
/// redaction erased is neither held (so never served) nor accepted.
pub struct Unerased {
    pub media: crate::media::MediaStore,
    /// The blobs redactions erased when the exchange began.
    pub erased: BTreeSet<[u8; 32]>,
}

fn refused() -> io::Error {
    io::Error::other("a redaction erased this media")
}

impl BlobStore for Unerased {
    fn has(&self, hash: &[u8; 32]) -> bool {
        !self.erased.contains(hash) && self.media.has(hash)
    }

    fn size(&self, hash: &[u8; 32]) -> Option<u64> {
        BlobStore::size(&self.media, hash).filter(|_| !self.erased.contains(hash))
    }

    fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>> {
        if self.erased.contains(hash) {
            return Err(refused());
        }
        self.media.read_at(hash, offset, max)
    }

    fn partial_len(&self, hash: &[u8; 32]) -> u64 {
        BlobStore::partial_len(&self.media, hash)
    }

    fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()> {
        if self.erased.contains(hash) {
            return Err(refused());
        }
        BlobStore::append_partial(&self.media, hash, offset, bytes)
    }

    fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String> {
        if self.erased.contains(hash) {
            let _ = BlobStore::discard_partial(&self.media, hash);
            return Err(refused().to_string());
        }
        BlobStore::finish_partial(&self.media, hash, expected_size)
    }

    fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()> {
        BlobStore::discard_partial(&self.media, hash)
    }
}

/// Removes the blobs fetched that a redaction learnt while the exchange
/// ran erased (the node's erasing pass had nothing to remove then).
fn drop_erased(node: &Arc<Mutex<Node>>, report: &FetchReport) {
    if report.fetched.is_empty() {
        return;
    }
    let Ok(n) = node.lock() else { return };
    for f in &report.fetched {
        if n.store().blob_erased(&f.hash).unwrap_or(false) {
            if let Err(e) = n.media().remove(&f.hash) {
                tracing::warn!("removing erased media {}: {e}", hex::encode(f.hash));
            }
        }
    }
}

/// The views caught up, then what the node wants, whether it has anything
/// to exchange at all, and its blob store.
fn prepare(node: &Arc<Mutex<Node>>) -> Result<Prepared, String> {
    let mut n = node
        .lock()
        .map_err(|_| "the node lock is poisoned".to_string())?;
    n.catch_up_views().map_err(|e| e.to_string())?;
    let wanted = wanted(&n).map_err(|e| e.to_string())?;
    let any = !wanted.is_empty() || n.store().names_media().map_err(|e| e.to_string())?;
    let erased = n.store().erased_blobs().map_err(|e| e.to_string())?;
    Ok(Prepared {
        wanted,
        any,
        media: Arc::new(Unerased {
            media: n.media().clone(),
            erased,
        }),
    })
}

/// Exchanges blobs with `peer` over a media connection from `endpoint`,
/// within the link's cap `pace` (the one its session used):
/// fetches every wanted blob and serves every blob the peer asks for
/// (the peer may lack blobs this node attached). Opens no connection when
/// the log names no media at all. Failures are reported per blob in the
/// summary, never as an error: the entries are synced either way, and the
/// next sync tries again.
pub async fn exchange_media(
    node: &Arc<Mutex<Node>>,
    client: &Arc<rustls::ClientConfig>,
    endpoint: &quinn::Endpoint,
    peer: SocketAddr,
    pace: Option<sentinel_sync::Pace>,
) -> MediaSummary {
    let Prepared { wanted, any, media } = match prepare(node) {
        Ok(found) => found,
        Err(error) => {
            return MediaSummary {
                error: Some(error),
                ..MediaSummary::default()
            }
        }
    };
    let mut summary = MediaSummary {
        wanted: wanted.len() as u64,
        ..MediaSummary::default()
    };
    if !any {
        return summary;
    }
    let conn = match quic_media::connect_media(endpoint, peer, client).await {
        Ok(conn) => conn,
        Err(e) => {
            summary.error = Some(e.to_string());
            return summary;
        }
    };
    let options = quic_media::MediaOptions {
        pace,
        ..Default::default()
    };
    let report = quic_media::exchange_blobs_opts(&conn, media, wanted, options, |_, _| {}).await;
    drop_erased(node, &report);
    summary.add(&report);
    summary
}

/// Runs the two-way exchange on a media connection a peer opened: serves
/// what the peer asks for and fetches what this node lacks from it.
pub async fn serve_media(node: &Arc<Mutex<Node>>, conn: &quinn::Connection) -> MediaSummary {
    let Prepared { wanted, media, .. } = match prepare(node) {
        Ok(found) => found,
        Err(error) => {
            conn.close(quinn::VarInt::from_u32(quic_media::CLOSE_DONE), b"error");
            return MediaSummary {
                error: Some(error),
                ..MediaSummary::default()
            };
        }
    };
    let mut summary = MediaSummary {
        wanted: wanted.len() as u64,
        ..MediaSummary::default()
    };
    let report = quic_media::exchange_blobs(conn, media, wanted).await;
    drop_erased(node, &report);
    summary.add(&report);
    summary
}
