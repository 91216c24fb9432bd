//! Media blobs through the hub, end to end: a real PostgreSQL (the test
//! harness), real QUIC with mutual TLS on loopback, real SpatiaLite nodes
//! from `sentinel-node` and the hub's real blob folder on disk. Photos a
//! node attached reach the hub after its sync (verified, content-addressed)
//! and from there a node that never met their author; bytes that do not
//! match their hash are refused and never stored. Every wait is bounded.

use std::path::Path;

use sentinel_certs::Ca;
use sentinel_hub::media::wanted_media;
use sentinel_schema::EventId;
use sentinel_sync::blobs::MediaStore;
use sentinel_sync::testing::{blob, PNG};
use tempfile::TempDir;

use crate::e2e::{deployment, eventually, now_ms, sync, Hub, Peer};

/// 200 KiB that sniff as JPEG (SOI and APP0 markers, then noise): several
/// chunks on the wire.
fn big_jpeg() -> Vec<u8> {
    blob(
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        200 * 1024,
        0x9e37_79b9,
    )
}

/// The SHA-256 name a blob store gives these bytes.
pub(crate) fn hash_of(bytes: &[u8]) -> [u8; 32] {
    let scratch = TempDir::new().unwrap();
    MediaStore::open(scratch.path().join("m"))
        .unwrap()
        .put(bytes)
        .unwrap()
        .hash
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Reports an event on `peer` and attaches each photo to it.
pub(crate) fn report_with_photos(peer: &Peer, id: u128, photos: &[(&[u8], &str)]) {
    peer.report(id, 1);
    let mut n = peer.node.lock().unwrap();
    let event = EventId(id.to_be_bytes());
    let now = now_ms();
    for (i, (bytes, name)) in photos.iter().enumerate() {
        n.attach(event, bytes, name, None, now + 1 + i as u64)
            .unwrap();
    }
}

fn media(peer: &Peer) -> MediaStore {
    peer.node.lock().unwrap().media().clone()
}

/// The hub's sync server with a blob folder, on a fresh database.
pub(crate) struct MediaHub {
    pub(crate) hub: Hub,
    _media_dir: TempDir,
    pub(crate) blobs: std::sync::Arc<MediaStore>,
}

impl MediaHub {
    pub(crate) async fn start(ca: &Ca) -> MediaHub {
        let media_dir = TempDir::new().unwrap();
        let blobs = MediaStore::open(media_dir.path().join("media")).unwrap();
        let with = blobs.clone();
        // With its own chain, as `serve` runs it: what the hub signs (a
        // redaction) wakes its projector.
        let hub = Hub::start_with(ca, 100, move |net, own| {
            net.with_media(with).with_own_chain(own)
        })
        .await;
        MediaHub {
            hub,
            _media_dir: media_dir,
            blobs: std::sync::Arc::new(blobs),
        }
    }

    fn dir(&self) -> &Path {
        self.blobs.dir()
    }

    async fn wanted(&self) -> Vec<([u8; 32], u64)> {
        wanted_media(&self.hub.store, &self.blobs).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn photos_reach_the_hub_and_a_node_that_never_met_their_author() {
    let ca = deployment("Sentinel media test CA", 61);
    let hub = MediaHub::start(&ca).await;
    let a = Peer::new(&ca, "node-a", 62);
    let b = Peer::new(&ca, "node-b", 63);
    let jpeg = big_jpeg();
    let (small, big) = (hash_of(PNG), hash_of(&jpeg));
    report_with_photos(&a, 1, &[(PNG, "small.png"), (&jpeg, "bridge.jpg")]);
    assert!(files(hub.dir()).is_empty());

    // A syncs: the entries go up, then the hub fetches the photos from A.
    let s = sync(&a, &hub.hub).await;
    assert_eq!(s.sent, 3, "{s:?}");
    assert_eq!(s.media.error, None, "{:?}", s.media);
    assert_eq!((s.media.wanted, s.media.fetched), (0, 0), "{:?}", s.media);
    assert_eq!(s.media.served, 2, "{:?}", s.media);
    assert_eq!(s.media.bytes_sent, (PNG.len() + jpeg.len()) as u64);
    eventually("the hub to store both photos", || {
        hub.blobs.contains(&small) && hub.blobs.contains(&big)
    })
    .await;
    // On the hub's disk under their hashes, verified, nothing else left.
    assert_eq!(hub.blobs.read(&small).unwrap(), PNG);
    assert_eq!(hub.blobs.read(&big).unwrap(), jpeg);
    let mut names: Vec<String> = [small, big]
        .iter()
        .map(|h| {
            let hex = hex::encode(h);
            Path::new(&hex[..2]).join(&hex[2..]).display().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(files(hub.dir()), names, "two blobs, no partial downloads");
    assert!(hub.wanted().await.is_empty());
    let mut named = hub.hub.store.media_named().await.unwrap();
    named.sort();
    let mut expected = vec![(small, PNG.len() as u64), (big, jpeg.len() as u64)];
    expected.sort();
    assert_eq!(named, expected);

    // B never met A: it gets the entries and the photos from the hub.
    assert!(!media(&b).contains(&small));
    let s = sync(&b, &hub.hub).await;
    assert_eq!(s.received, 3, "{s:?}");
    assert_eq!(
        (s.media.wanted, s.media.fetched, s.media.failed.len()),
        (2, 2, 0),
        "{:?}",
        s.media
    );
    assert_eq!(s.media.bytes_received, (PNG.len() + jpeg.len()) as u64);
    assert_eq!(s.media.served, 0);
    assert_eq!(media(&b).read(&small).unwrap(), PNG);
    assert_eq!(media(&b).read(&big).unwrap(), jpeg);
    assert_eq!(
        std::fs::read(media(&b).path(&big)).unwrap(),
        std::fs::read(hub.blobs.path(&big)).unwrap(),
        "identical bytes on B and on the hub"
    );
    assert!(sentinel_node::net_media::wanted(&b.node.lock().unwrap())
        .unwrap()
        .is_empty());

    // Everyone in sync and holding everything: the exchange moves nothing.
    let s = sync(&a, &hub.hub).await;
    assert_eq!((s.media.wanted, s.media.served), (0, 0), "{:?}", s.media);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_refuses_bytes_that_do_not_match_their_hash() {
    let ca = deployment("Sentinel media test CA", 64);
    let hub = MediaHub::start(&ca).await;
    let a = Peer::new(&ca, "node-a", 65);
    let jpeg = big_jpeg();
    let (small, big) = (hash_of(PNG), hash_of(&jpeg));
    report_with_photos(&a, 2, &[(PNG, "small.png"), (&jpeg, "bridge.jpg")]);
    // A's copy of the big photo rots on disk: same length, one bit flipped.
    let path = media(&a).path(&big);
    let mut rotten = std::fs::read(&path).unwrap();
    rotten[150_000] ^= 0x01;
    std::fs::write(&path, &rotten).unwrap();

    let s = sync(&a, &hub.hub).await;
    assert_eq!(s.sent, 3, "the entries sync regardless: {s:?}");
    eventually("the hub to store the good photo", || {
        hub.blobs.contains(&small)
    })
    .await;
    assert_eq!(hub.blobs.read(&small).unwrap(), PNG);
    // The rotten one is refused: no blob, no partial download, nothing
    // but the good photo in the folder.
    assert!(!hub.blobs.contains(&big));
    assert!(!hub.blobs.partial_path(&big).exists());
    let hex = hex::encode(small);
    assert_eq!(
        files(hub.dir()),
        vec![Path::new(&hex[..2]).join(&hex[2..]).display().to_string()]
    );
    // Still wanted, from a better peer.
    assert_eq!(hub.wanted().await, vec![(big, jpeg.len() as u64)]);

    // A repairs its copy; the next sync delivers the real bytes.
    media(&a).put(&jpeg).unwrap();
    let s = sync(&a, &hub.hub).await;
    assert_eq!(s.media.served, 1, "{:?}", s.media);
    eventually("the hub to store the repaired photo", || {
        hub.blobs.contains(&big)
    })
    .await;
    assert_eq!(hub.blobs.read(&big).unwrap(), jpeg);
    assert!(hub.wanted().await.is_empty());
}

/// A sensor's certificate is good for pushing readings, not for media: on
/// a media connection to the hub it gets no blob, whatever it asks for.
#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_gets_no_blob_from_the_hub() {
    use sentinel_certs::{FreshnessPolicy, RevocationHandle};
    use sentinel_schema::DeviceRole;
    use sentinel_sync::{quic, quic_media};

    let ca = deployment("Sentinel media test CA", 66);
    let hub = MediaHub::start(&ca).await;
    let a = Peer::new(&ca, "node-a", 67);
    report_with_photos(&a, 1, &[(PNG, "small.png")]);
    let small = hash_of(PNG);
    sync(&a, &hub.hub).await;
    eventually("the hub to store the photo", || hub.blobs.contains(&small)).await;

    let sensor = crate::e2e::issue(&ca, DeviceRole::Sensor, "gauge-9", 68);
    let client = sentinel_certs::client_config(
        &sensor,
        &RevocationHandle::empty(),
        FreshnessPolicy::Lenient,
    )
    .unwrap();
    let scratch = TempDir::new().unwrap();
    let store = std::sync::Arc::new(MediaStore::open(scratch.path().join("media")).unwrap());
    let endpoint = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client.clone()).unwrap();
    match quic_media::connect_media(&endpoint, hub.hub.addr(), &client).await {
        Err(e) => eprintln!("refused at connect: {e}"),
        Ok(conn) => {
            let report = quic_media::fetch_blobs(
                &conn,
                store.clone(),
                vec![(small, PNG.len() as u64)],
                |_, _| {},
            )
            .await;
            assert!(
                report.fetched.is_empty(),
                "a sensor fetched a blob: {report:?}"
            );
            assert_eq!(report.bytes_received(), 0, "{report:?}");
            let closed = conn.closed().await;
            assert!(closed.to_string().contains("sensor"), "{closed}");
        }
    }
    assert!(!store.contains(&small));
}
