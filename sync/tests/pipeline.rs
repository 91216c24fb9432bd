//! The QUIC driver's pipeline (batch n+1 decoded and signature-checked
//! on another thread while batch n commits) keeps "acknowledged means
//! committed" (invariant 3): over a real QUIC link with mutual TLS and a
//! real CA, every Ack the sender sees names heads the receiver's store
//! already holds — when a later batch is refused after an earlier one
//! committed, and when the connection drops with frames prepared but
//! not applied (the next session resumes without loss or duplicates).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentinel_certs::{Ca, FreshnessPolicy, RevocationHandle};
use sentinel_schema::{author_of, AuthorId, DeviceRole, Head, SignedEntry, SigningKey};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{self, Side as QuicSide, Until};
use sentinel_sync::testing::{media, sign_after};
use sentinel_sync::{
    MemoryStore, RejectReason, Session, SessionConfig, SessionEvent, SessionStats, SyncStore,
};

const DAY: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A node of a real CA: its key, certificate and TLS configurations.
struct Device {
    key: SigningKey,
    cert_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn enrolled(ca: &Ca, name: &str, seed: u8) -> Device {
    let now = now_ms();
    let key = SigningKey::from_bytes(&[seed; 32]);
    let e = ca
        .enroll(
            DeviceRole::Node,
            name,
            key.clone(),
            now - DAY,
            now + DAY,
            now,
        )
        .unwrap();
    let revocations = RevocationHandle::empty();
    let lenient = FreshnessPolicy::Lenient;
    Device {
        server: sentinel_certs::server_config(&e, &revocations, lenient).unwrap(),
        client: sentinel_certs::client_config(&e, &revocations, lenient).unwrap(),
        key,
        cert_der: e.cert_der,
    }
}

/// Two nodes of one CA; `a` holds the chains of `authors` (`n` entries
/// each, signed by devices of the same CA whose certificates `a` holds).
struct Net {
    ca: Ca,
    a: Device,
    b: Device,
    store_a: Arc<Mutex<MemoryStore>>,
    store_b: Arc<Mutex<MemoryStore>>,
}

impl Net {
    fn new() -> Net {
        let now = now_ms();
        // Wider than the devices' validity (`enrolled`, from a later
        // `now`): certificates count whole seconds, so a device enrolled a
        // second later would otherwise outlive its CA and be refused.
        let ca = Ca::create(
            "Pipeline test CA",
            now - 2 * DAY,
            now + 2 * DAY,
            SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        let (a, b) = (enrolled(&ca, "pipe-a", 2), enrolled(&ca, "pipe-b", 3));
        let mut store_a = MemoryStore::new();
        let mut store_b = MemoryStore::new();
        store_a
            .add_certificates(vec![(author_of(&a.key), a.cert_der.clone())])
            .unwrap();
        store_b
            .add_certificates(vec![(author_of(&b.key), b.cert_der.clone())])
            .unwrap();
        Net {
            ca,
            a,
            b,
            store_a: Arc::new(Mutex::new(store_a)),
            store_b: Arc::new(Mutex::new(store_b)),
        }
    }

    /// Gives `a` the chain of a new author (`seed`): `n` entries, the last
    /// one's signature spoiled if `spoil_last`.
    fn author(&self, seed: u8, n: u64, spoil_last: bool) -> (AuthorId, Vec<SignedEntry>) {
        let d = enrolled(&self.ca, &format!("author-{seed}"), seed);
        let author = author_of(&d.key);
        let mut store = self.store_a.lock().unwrap();
        store.add_certificates(vec![(author, d.cert_der)]).unwrap();
        let now = now_ms();
        let mut log: Vec<SignedEntry> = Vec::new();
        for i in 0..n {
            let e = sign_after(&d.key, log.last(), now - 1000 + i, media(i, 200));
            log.push(e);
        }
        if spoil_last {
            let last = log.pop().unwrap();
            let mut bytes = last.into_bytes();
            let len = bytes.len();
            bytes[len - 5] ^= 0x01;
            log.push(SignedEntry::from_bytes(bytes).unwrap());
        }
        for e in &log {
            store.append_local(e.clone()).unwrap();
        }
        (author, log)
    }

    fn config(&self) -> SessionConfig {
        let trust = Arc::new(CaTrust::new(self.ca.cert().clone()));
        let mut config = SessionConfig::new(DeviceRole::Node, trust);
        // Small batches: many of them in the pipeline at once.
        config.max_batch_entries = 8;
        config
    }

    /// One session, `a` sending and `b` receiving, on a fresh connection.
    /// `b` closes the connection once it has seen `drop_after` `Applied`
    /// events, if given. Every Ack `a` sees is checked against `b`'s store
    /// at that moment. Answers both drivers' stats (`None`: that driver
    /// ended with an error, as a dropped connection does).
    fn session(&self, drop_after: Option<usize>) -> (Option<SessionStats>, Option<SessionStats>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ea = quic::server_endpoint(
                "127.0.0.1:0".parse().unwrap(),
                self.a.server.clone(),
                self.a.client.clone(),
            )
            .unwrap();
            let eb = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), self.b.client.clone())
                .unwrap();
            let addr = ea.local_addr().unwrap();
            let (cb, ca_conn) = tokio::join!(quic::connect(&eb, addr), async {
                ea.accept().await.unwrap().await.unwrap()
            });
            let cb = cb.unwrap();
            let store_b = self.store_b.clone();
            let sender = quic::drive(
                &ca_conn,
                QuicSide::Acceptor,
                Session::new(self.config()),
                self.store_a.clone(),
                Until::CaughtUp,
                None,
                |e| {
                    if let SessionEvent::Acknowledged { heads, .. } = e {
                        acked_is_committed(heads, &store_b.lock().unwrap());
                    }
                },
            );
            let mut applied = 0;
            let dropping = cb.clone();
            let receiver = quic::drive(
                &cb,
                QuicSide::Initiator,
                Session::new(self.config()),
                self.store_b.clone(),
                Until::CaughtUp,
                None,
                |e| {
                    if let SessionEvent::Applied { .. } = e {
                        applied += 1;
                        if Some(applied) == drop_after {
                            dropping.close(0u32.into(), b"dropped mid-pipeline");
                        }
                    }
                },
            );
            let (sent, received) = tokio::time::timeout(Duration::from_secs(60), async {
                tokio::join!(sender, receiver)
            })
            .await
            .expect("the session hung");
            ea.close(0u32.into(), b"");
            eb.close(0u32.into(), b"");
            (sent.ok().map(|o| o.stats), received.ok().map(|o| o.stats))
        })
    }
}

/// Every head an Ack names is held by the receiver's store already.
fn acked_is_committed(acked: &[(AuthorId, Head)], store: &MemoryStore) {
    for (author, head) in acked {
        let held = store.head(author).unwrap().map_or(0, |h| h.seq);
        assert!(
            held >= head.seq,
            "acknowledged {author} up to {} while the store holds {held}",
            head.seq
        );
        if head.seq > 0 {
            assert_eq!(store.log(author)[head.seq as usize - 1].id(), head.id);
        }
    }
}

fn heads(store: &MemoryStore) -> BTreeMap<AuthorId, u64> {
    store
        .heads()
        .unwrap()
        .iter()
        .map(|(a, h)| (*a, h.seq))
        .collect()
}

#[test]
fn a_batch_refused_after_an_earlier_one_committed_is_not_acknowledged() {
    let net = Net::new();
    // Batches of 8: x's 36th entry (spoiled) travels in the fifth batch,
    // after four of x's batches have been prepared and committed.
    let (x, x_log) = net.author(10, 36, true);
    let (y, _) = net.author(11, 40, false);
    let (sent, received) = net.session(None);
    let (sent, received) = (sent.unwrap(), received.unwrap());
    let b = net.store_b.lock().unwrap();
    let held = heads(&b);
    assert_eq!(held.get(&x), Some(&35));
    assert_eq!(held.get(&y), Some(&40));
    let q: Vec<_> = b.quarantined().collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].entry.id(), x_log[35].id());
    assert_eq!(q[0].reason, RejectReason::BadSignature);
    assert_eq!(received.entries_applied, 75);
    assert_eq!(received.entries_quarantined, 1);
    // Every batch was acknowledged, the refused entry's with x at 35.
    assert_eq!(sent.entries_acked, sent.entries_sent);
    assert_eq!(sent.entries_sent, 76);
}

#[test]
fn a_connection_dropped_mid_pipeline_resumes_without_loss_or_duplicates() {
    let net = Net::new();
    let (x, _) = net.author(10, 300, false);
    let (y, _) = net.author(11, 200, false);
    // b drops the connection after its third batch, with more batches read
    // and being prepared behind it.
    net.session(Some(3));
    let before = heads(&net.store_b.lock().unwrap());
    let held_before: u64 = before.get(&x).unwrap_or(&0) + before.get(&y).unwrap_or(&0);
    assert!(held_before >= 24, "three batches of 8 were committed");
    assert!(held_before < 500, "the session was cut short");
    let (sent, received) = net.session(None);
    let (sent, received) = (sent.unwrap(), received.unwrap());
    let b = net.store_b.lock().unwrap();
    assert_eq!(heads(&b), heads(&net.store_a.lock().unwrap()));
    assert_eq!(b.n_entries(), 500);
    assert_eq!(received.duplicates, 0);
    assert_eq!(received.entries_applied, 500 - held_before);
    assert_eq!(sent.entries_sent, 500 - held_before);
}
