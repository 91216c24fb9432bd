//! The media transport over loopback QUIC, between two peers enrolled by
//! one test CA, with blobs kept in memory.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, Endpoint, VarInt};

use super::serve::{serve_blob, Meter};
use super::wire::{BlobRequest, REQUEST_BYTES, RESET_BAD_REQUEST};
use super::*;

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
        let now = crate::clock::now_ms();
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
