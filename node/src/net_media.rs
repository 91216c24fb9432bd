//! Media blobs between peers: which blobs the node lacks, fetching them
//! from a peer after a sync session, and serving them to peers.
//!
//! The wire is `sentinel-sync`'s [`quic_media`] (its own QUIC connection,
//! ALPN `sentinel-media/1`); the node's [`MediaStore`] is its
//! [`BlobStore`], with unfinished downloads kept under `media/partial/` so
//! a broken transfer resumes. A blob is wanted when a `media_attached`
//! entry in the log names it (the `event_media` view) and the store does
//! not hold it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_sync::quic_media::{self, BlobStore, FetchError};

use crate::media::MediaStore;
use crate::net::Net;
use crate::node::{Node, NodeError};
use crate::store::StoreError;

impl BlobStore for MediaStore {
    fn has(&self, hash: &[u8; 32]) -> bool {
        self.contains(hash)
    }

    fn size(&self, hash: &[u8; 32]) -> Option<u64> {
        std::fs::metadata(self.path(hash))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Reads the bytes as they are on disk, without checking the blob's
    /// hash: that would read the whole blob for every chunk. The receiver
    /// verifies what it got before storing it.
    fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(hash))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(max);
        file.take(max as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn partial_len(&self, hash: &[u8; 32]) -> u64 {
        MediaStore::partial_len(self, hash)
    }

    fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()> {
        MediaStore::append_partial(self, hash, offset, bytes).map_err(io::Error::other)
    }

    fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String> {
        MediaStore::finish_partial(self, hash, expected_size)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()> {
        MediaStore::discard_partial(self, hash).map_err(io::Error::other)
    }
}

/// Blobs that entries in the log name and the node does not hold, with
/// the size their entry announced, in hash order. A hash announced with
/// two sizes (one of them necessarily false) is listed once, with the
/// smaller size.
pub fn wanted(node: &Node) -> Result<Vec<([u8; 32], u64)>, NodeError> {
    let mut stmt = node
        .store()
        .conn()
        .prepare("SELECT DISTINCT hash, size FROM event_media ORDER BY hash, size")
        .map_err(StoreError::from)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .map_err(StoreError::from)?;
    let mut out: Vec<([u8; 32], u64)> = Vec::new();
    for row in rows {
        let (hash, size) = row.map_err(StoreError::from)?;
        // The view holds only validated entries; anything else is skipped
        // rather than trusted.
        let (Ok(hash), Ok(size)) = (<[u8; 32]>::try_from(hash), u64::try_from(size)) else {
            continue;
        };
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

/// What fetching media from one peer did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MediaSummary {
    /// Blobs the node lacked when the fetch began.
    pub wanted: u64,
    /// Blobs fetched, verified and stored.
    pub fetched: u64,
    /// Blob bytes received (resumed downloads count only the rest).
    pub bytes_received: u64,
    pub failed: Vec<FailedBlob>,
    /// Why no blob could be asked for at all (no media connection).
    pub error: Option<String>,
}

/// The server TLS configuration for `listen`: sessions and media.
pub fn server_config(net: &Net) -> Arc<rustls::ServerConfig> {
    quic_media::with_media_alpn(&net.server)
}

/// Fetches every wanted blob from `peer` over a media connection from
/// `endpoint`. Opens no connection when nothing is wanted. Failures are
/// reported per blob in the summary, never as an error: the entries are
/// synced either way, and the next sync tries again.
pub async fn fetch_missing(
    node: &Arc<Mutex<Node>>,
    net: &Net,
    endpoint: &quinn::Endpoint,
    peer: SocketAddr,
) -> MediaSummary {
    let found = node
        .lock()
        .map_err(|_| "the node lock is poisoned".to_string())
        .and_then(|n| {
            wanted(&n)
                .map(|w| (w, n.media().clone()))
                .map_err(|e| e.to_string())
        });
    let (wanted, media) = match found {
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
    if wanted.is_empty() {
        return summary;
    }
    let conn = match quic_media::connect_media(endpoint, peer, &net.client).await {
        Ok(conn) => conn,
        Err(e) => {
            summary.error = Some(e.to_string());
            return summary;
        }
    };
    let report = quic_media::fetch_blobs(&conn, Arc::new(media), wanted, |_, _| {}).await;
    conn.close(quinn::VarInt::from_u32(0), b"done");
    summary.fetched = report.fetched.len() as u64;
    summary.bytes_received = report.bytes_received();
    summary.failed = report
        .failed
        .iter()
        .map(|(hash, e): &([u8; 32], FetchError)| FailedBlob {
            hash: hex::encode(hash),
            reason: e.to_string(),
        })
        .collect();
    summary
}

/// Answers blob requests on a media connection until the peer closes it.
pub async fn serve_media(node: &Arc<Mutex<Node>>, conn: &quinn::Connection) {
    let media = match node.lock() {
        Ok(n) => n.media().clone(),
        Err(_) => return,
    };
    if let Err(e) = quic_media::serve_blobs(conn, Arc::new(media)).await {
        eprintln!("peer {}: media: {e}", conn.remote_address());
    }
}
