//! Media blobs between two enrolled nodes over real QUIC with mutual TLS
//! on loopback: B syncs from A's `serve` and then fetches the blobs A's
//! `media_attached` entries name, resuming unfinished downloads and
//! refusing bytes that do not match their hash.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::Ca;
use sentinel_node::media::MediaError;
use sentinel_node::net::{self, Net, Summary};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::*;
use sentinel_sync::testing::{blob, PNG};
use tempfile::TempDir;

/// 300 KiB that sniff as PNG: five chunks on the wire, the last one short.
fn big_png() -> Vec<u8> {
    blob(b"\x89PNG\r\n\x1a\n", 300 * 1024, 0x1234_5678)
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

struct World {
    _tmp: TempDir,
    ca: Ca,
    now: u64,
    rt: tokio::runtime::Runtime,
}

impl World {
    fn new() -> World {
        let now = now_ms();
        let ca = Ca::create(
            "Media CA",
            now - DAY,
            now + 365 * DAY,
            SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        World {
            _tmp: TempDir::new().unwrap(),
            ca,
            now,
            rt,
        }
    }

    /// An enrolled node in its own folder.
    fn node(&self, seed: u8) -> PathBuf {
        let dir = self._tmp.path().join(format!("node-{seed}"));
        drop(Node::init(&dir, SigningKey::from_bytes(&[seed + 100; 32])).unwrap());
        let e = self
            .ca
            .enroll(
                DeviceRole::Node,
                &format!("node-{seed}"),
                SigningKey::from_bytes(&[seed; 32]),
                self.now - DAY,
                self.now + DAY,
                self.now,
            )
            .unwrap();
        enroll(&dir, &e).unwrap();
        dir
    }

    /// Starts `serve` for the node in `dir`; returns its address.
    fn serve(&self, dir: &Path) -> SocketAddr {
        let node = Node::open(dir).unwrap();
        let net = Arc::new(Net::load(dir, &node).unwrap());
        let node = Arc::new(Mutex::new(node));
        let _guard = self.rt.enter();
        let endpoint = net::listen(&net, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        self.rt
            .spawn(async move { net::serve(node, net, endpoint, |_| {}).await });
        addr
    }

    /// One `sync` from the node in `dir` to `peer`.
    fn sync(&self, dir: &Path, peer: SocketAddr) -> Summary {
        let node = Node::open(dir).unwrap();
        let net = Net::load(dir, &node).unwrap();
        let node = Arc::new(Mutex::new(node));
        self.rt
            .block_on(net::sync_once(node, &net, peer, |_| {}))
            .unwrap()
    }
}

/// A with an event holding the small PNG and the 300 KiB one.
fn a_with_photos(w: &World) -> (PathBuf, [u8; 32], [u8; 32]) {
    let a = w.node(2);
    let mut n = Node::open(&a).unwrap();
    let event = EventId(7u128.to_be_bytes());
    n.report(
        &NewEvent {
            title: "Bridge damaged".into(),
            description: "Photos attached".into(),
            category: "flood".into(),
            severity: 3,
            location: Point::new(13.4, 52.5).unwrap(),
            reported_ms: w.now,
        },
        event,
        None,
        w.now,
    )
    .unwrap();
    n.attach(event, PNG, "small.png", None, w.now + 1).unwrap();
    n.attach(event, &big_png(), "big.png", None, w.now + 2)
        .unwrap();
    (a, hash(PNG), hash(&big_png()))
}

#[test]
fn b_fetches_the_blobs_a_attached_and_holds_the_same_bytes() {
    let w = World::new();
    let (a, small, big) = a_with_photos(&w);
    let peer = w.serve(&a);
    let b = w.node(3);
    {
        let n = Node::open(&b).unwrap();
        assert!(!n.media().contains(&small));
    }

    let s = w.sync(&b, peer);
    assert_eq!(s.received, 3, "{s:?}");
    assert_eq!(
        (s.media.wanted, s.media.fetched, s.media.failed.len()),
        (2, 2, 0),
        "{:?}",
        s.media
    );
    assert_eq!(s.media.error, None);
    assert_eq!(s.media.bytes_received, (PNG.len() + big_png().len()) as u64);
    let n = Node::open(&b).unwrap();
    assert_eq!(n.media().read(&small).unwrap(), PNG);
    assert_eq!(n.media().read(&big).unwrap(), big_png());
    assert_eq!(n.media().partial_len(&big), 0);
    assert!(sentinel_node::net_media::wanted(&n).unwrap().is_empty());
    drop(n);

    // In sync, blobs held: nothing is wanted and no media connection opens.
    let again = w.sync(&b, peer);
    assert_eq!(again.media, Default::default());
}

#[test]
fn an_interrupted_download_resumes_from_its_offset() {
    let w = World::new();
    let (a, small, big) = a_with_photos(&w);
    let peer = w.serve(&a);
    let b = w.node(3);
    let bytes = big_png();
    // An earlier transfer stopped after 150,001 bytes (not a chunk
    // boundary) and kept them.
    let half = 150_001;
    {
        let n = Node::open(&b).unwrap();
        n.media().append_partial(&big, 0, &bytes[..half]).unwrap();
        assert_eq!(n.media().partial_len(&big), half as u64);
        assert!(!n.media().contains(&big));
    }

    let s = w.sync(&b, peer);
    assert_eq!(
        (s.media.fetched, s.media.failed.len()),
        (2, 0),
        "{:?}",
        s.media
    );
    // Only the rest of the big blob crossed the wire (and all of the small one).
    assert_eq!(
        s.media.bytes_received,
        (PNG.len() + bytes.len() - half) as u64
    );
    let n = Node::open(&b).unwrap();
    assert_eq!(n.media().read(&big).unwrap(), bytes);
    assert_eq!(n.media().read(&small).unwrap(), PNG);
    assert!(!n.media().partial_path(&big).exists());
}

#[test]
fn bytes_that_do_not_match_their_hash_are_refused_and_never_stored() {
    let w = World::new();
    let (a, small, big) = a_with_photos(&w);
    // A's copy of the big blob rots on disk: same length, one byte flipped.
    {
        let n = Node::open(&a).unwrap();
        let path = n.media().path(&big);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[200_000] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
    }
    let peer = w.serve(&a);
    let b = w.node(3);

    let s = w.sync(&b, peer);
    assert_eq!(s.received, 3, "the entries sync regardless");
    assert_eq!(s.media.fetched, 1, "{:?}", s.media);
    assert_eq!(s.media.failed.len(), 1, "{:?}", s.media);
    let failed = &s.media.failed[0];
    assert_eq!(failed.hash, hex::encode(big));
    assert!(
        failed.reason.starts_with("refused: ") && failed.reason.contains("found sha256 "),
        "{}",
        failed.reason
    );

    let n = Node::open(&b).unwrap();
    assert_eq!(n.media().read(&small).unwrap(), PNG);
    assert!(!n.media().contains(&big));
    assert!(matches!(
        n.media().read(&big),
        Err(MediaError::NotFound { .. })
    ));
    assert!(
        !n.media().partial_path(&big).exists(),
        "the partial is discarded"
    );
    assert_eq!(
        sentinel_node::net_media::wanted(&n).unwrap(),
        vec![(big, big_png().len() as u64)],
        "still wanted, from a better peer"
    );
}

#[test]
fn a_peer_whose_copy_has_another_size_is_refused_before_any_chunk() {
    let w = World::new();
    let (a, _small, big) = a_with_photos(&w);
    {
        let n = Node::open(&a).unwrap();
        let path = n.media().path(&big);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
    }
    let peer = w.serve(&a);
    let b = w.node(3);
    let s = w.sync(&b, peer);
    assert_eq!(s.media.failed.len(), 1, "{:?}", s.media);
    assert_eq!(
        s.media.failed[0].reason,
        format!(
            "the peer has {} bytes, the entry announced {}",
            big_png().len() + 1,
            big_png().len()
        )
    );
    assert_eq!(s.media.bytes_received, PNG.len() as u64);
    let n = Node::open(&b).unwrap();
    assert!(!n.media().contains(&big));
    assert_eq!(n.media().partial_len(&big), 0);
}

/// A sensor's certificate is good for pushing readings, not for media: on
/// a media connection to `serve` it gets no blob, whatever it asks for.
#[test]
fn a_sensor_gets_no_blob_from_serve() {
    use sentinel_certs::{FreshnessPolicy, RevocationHandle};
    use sentinel_sync::blobs::MediaStore;
    use sentinel_sync::{quic, quic_media};

    let w = World::new();
    let (a, small, big) = a_with_photos(&w);
    let peer = w.serve(&a);
    let sensor =
        w.ca.enroll(
            DeviceRole::Sensor,
            "gauge-9",
            SigningKey::from_bytes(&[9; 32]),
            w.now - DAY,
            w.now + DAY,
            w.now,
        )
        .unwrap();
    let client = sentinel_certs::client_config(
        &sensor,
        &RevocationHandle::empty(),
        FreshnessPolicy::Lenient,
    )
    .unwrap();
    let scratch = TempDir::new().unwrap();
    let store = std::sync::Arc::new(MediaStore::open(scratch.path().join("media")).unwrap());
    let wanted = vec![(small, PNG.len() as u64), (big, big_png().len() as u64)];
    let report = w.rt.block_on(async {
        let endpoint =
            quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client.clone()).unwrap();
        match quic_media::connect_media(&endpoint, peer, &client).await {
            Err(e) => {
                eprintln!("refused at connect: {e}");
                None
            }
            Ok(conn) => {
                let report = quic_media::fetch_blobs(&conn, store.clone(), wanted, |_, _| {}).await;
                assert!(
                    report.fetched.is_empty(),
                    "a sensor fetched blobs: {report:?}"
                );
                let closed = conn.closed().await;
                eprintln!("closed: {closed}");
                assert!(closed.to_string().contains("sensor"), "{closed}");
                Some(report)
            }
        }
    });
    if let Some(report) = &report {
        assert!(
            report.fetched.is_empty(),
            "a sensor fetched blobs: {report:?}"
        );
        assert_eq!(report.bytes_received(), 0, "{report:?}");
    }
    assert!(!store.contains(&small) && !store.contains(&big));
}
