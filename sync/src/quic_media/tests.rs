//! The media transport over loopback QUIC, between two peers enrolled by
//! one test CA, with blobs kept in memory.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, Endpoint, VarInt};

use super::serve::{serve_blob, Meter};
use super::wire::{BlobRequest, Response, REQUEST_BYTES, RESET_BAD_REQUEST};
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

/// Waits (bounded) until `store` keeps `n` bytes of the download of `h`.
async fn until_partial(store: &MemBlobs, h: &[u8; 32], n: u64) {
    let deadline = std::time::Instant::now() + HANG;
    while store.partial_len(h) != n {
        assert!(
            std::time::Instant::now() < deadline,
            "the download holds {} bytes, not {n}",
            store.partial_len(h)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The holder's side of a transfer that breaks: answers the first blob
/// request with the blob's first `cut` bytes, in chunks, waits until the
/// receiver has kept them, then closes the connection mid-blob.
async fn serve_then_cut(conn: Connection, bytes: Vec<u8>, cut: usize, receiver: Arc<MemBlobs>) {
    let (mut send, mut recv) = conn.accept_bi().await.unwrap();
    let mut request = [0u8; REQUEST_BYTES];
    recv.read_exact(&mut request).await.unwrap();
    let request = BlobRequest::decode(&request).unwrap();
    assert_eq!(request.offset, 0);
    let header = Response::Sending {
        size: bytes.len() as u64,
    };
    send.write_all(&header.encode()).await.unwrap();
    for chunk in bytes[..cut].chunks(CHUNK_BYTES) {
        send.write_all(&(chunk.len() as u32).to_be_bytes())
            .await
            .unwrap();
        send.write_all(chunk).await.unwrap();
    }
    until_partial(&receiver, &request.hash, cut as u64).await;
    conn.close(VarInt::from_u32(9), b"link lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_cut_mid_blob_resumes_in_a_later_session_with_only_the_rest() {
    let link = Link::new();
    let x = blob(6, 300_000);
    let hx = sha(&x);
    // Not a chunk boundary: two whole chunks and part of a third.
    let cut = 2 * CHUNK_BYTES + 18_929;
    let a = MemBlobs::with(&[(&hx, &x)]);
    let b = MemBlobs::with(&[]);

    // First session: the link goes after `cut` bytes of the blob.
    let (client, server) = link.connect().await;
    tokio::spawn(serve_then_cut(server, x.clone(), cut, b.clone()));
    let first = tokio::time::timeout(
        HANG,
        exchange_blobs(&client, b.clone(), vec![(hx, x.len() as u64)]),
    )
    .await
    .expect("the exchange hung");
    assert!(first.fetched.is_empty(), "{first:?}");
    assert_eq!(first.failed.len(), 1, "{first:?}");
    assert!(!b.has(&hx));
    assert_eq!(b.partial_len(&hx), cut as u64, "what arrived is kept");

    // A later session, on a new connection: only the rest crosses.
    let (client, server) = link.connect().await;
    let (ra, rb) = tokio::time::timeout(HANG, async {
        tokio::join!(
            exchange_blobs(&server, a.clone(), Vec::new()),
            exchange_blobs(&client, b.clone(), vec![(hx, x.len() as u64)]),
        )
    })
    .await
    .expect("the exchange hung");
    let rest = (x.len() - cut) as u64;
    assert_eq!(
        rb.fetched,
        vec![Fetched {
            hash: hx,
            size: x.len() as u64,
            resumed_from: cut as u64,
            bytes_received: rest,
        }],
        "{rb:?}"
    );
    assert_eq!((ra.served, ra.bytes_sent), (1, rest), "{ra:?}");
    // The whole blob verified (the store checks size and SHA-256).
    assert_eq!(b.get(&hx).unwrap(), x);
    assert_eq!(b.partial_len(&hx), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_prefix_that_does_not_hash_right_is_discarded_then_fetched_whole() {
    let link = Link::new();
    let x = blob(7, 200_000);
    let hx = sha(&x);
    let a = MemBlobs::with(&[(&hx, &x)]);
    let b = MemBlobs::with(&[]);
    // An earlier download kept 100,000 bytes, one of them damaged.
    let mut prefix = x[..100_000].to_vec();
    prefix[4_242] ^= 0x20;
    b.append_partial(&hx, 0, &prefix).unwrap();

    let exchange = |b: Arc<MemBlobs>| {
        let link = &link;
        let (a, x) = (a.clone(), &x);
        async move {
            let (client, server) = link.connect().await;
            let (_, rb) = tokio::time::timeout(HANG, async {
                tokio::join!(
                    exchange_blobs(&server, a, Vec::new()),
                    exchange_blobs(&client, b, vec![(hx, x.len() as u64)]),
                )
            })
            .await
            .expect("the exchange hung");
            rb
        }
    };
    // The rest arrives, the whole does not hash right: refused, and the
    // damaged download is thrown away rather than resumed forever.
    let second = exchange(b.clone()).await;
    match &second.failed[..] {
        [(hash, FetchError::Refused(reason))] => {
            assert_eq!(*hash, hx);
            assert!(reason.contains("found sha256"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!b.has(&hx));
    assert_eq!(b.partial_len(&hx), 0);
    // The next session fetches it whole, and it verifies.
    let third = exchange(b.clone()).await;
    assert_eq!(third.fetched.len(), 1, "{third:?}");
    assert_eq!(third.fetched[0].resumed_from, 0);
    assert_eq!(third.bytes_received(), x.len() as u64);
    assert_eq!(b.get(&hx).unwrap(), x);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capped_holder_sends_no_faster_than_its_cap() {
    use crate::quic_pace::Pace;
    use std::num::NonZeroU64;
    let link = Link::new();
    let x = blob(8, 250_000);
    let hx = sha(&x);
    let a = MemBlobs::with(&[(&hx, &x)]);
    let b = MemBlobs::with(&[]);
    let rate = 120_000u64;
    let pace = Pace::new(NonZeroU64::new(rate).unwrap());
    let burst = pace.burst();
    let (sent, received) = (
        Arc::new(MediaProgress::default()),
        Arc::new(MediaProgress::default()),
    );
    let (client, server) = link.connect().await;
    let started = std::time::Instant::now();
    let (ra, rb) = tokio::time::timeout(HANG, async {
        tokio::join!(
            exchange_blobs_opts(
                &server,
                a.clone(),
                Vec::new(),
                MediaOptions {
                    pace: Some(pace),
                    progress: Some(sent.clone()),
                    ..MediaOptions::default()
                },
                |_, _| {},
            ),
            exchange_blobs_opts(
                &client,
                b.clone(),
                vec![(hx, x.len() as u64)],
                MediaOptions {
                    progress: Some(received.clone()),
                    ..MediaOptions::default()
                },
                |_, _| {},
            ),
        )
    })
    .await
    .expect("the exchange hung");
    let took = started.elapsed();
    assert_eq!(rb.fetched.len(), 1, "{rb:?}");
    assert_eq!(b.get(&hx).unwrap(), x);
    assert_eq!(ra.bytes_sent, x.len() as u64);
    // The running counts saw every blob byte.
    assert_eq!(sent.bytes_sent(), x.len() as u64);
    assert_eq!(received.bytes_received(), x.len() as u64);
    // A lower bound only (the bytes over the cap, less its burst).
    let least = Duration::from_millis((x.len() as u64 - burst) * 1000 / rate);
    eprintln!("media capped at {rate} B/s: {} bytes in {took:?}", x.len());
    assert!(took >= least * 9 / 10, "{took:?} < {least:?}");
}
