//! Peers the transport must refuse, and a sensor that may not write events.

use super::*;

/// Trusts servers certified by `ca`, like a node's own verifier, for a
/// client whose own certificate (or lack of one) is the point.
#[derive(Debug)]
struct TrustCa(CaCert);

impl ServerCertVerifier for TrustCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        sentinel_certs::verify_identity(end_entity, &self.0)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// An ed25519 key as PKCS#8 v1 DER: a fixed header, then the seed.
fn pkcs8(key: &SigningKey) -> PrivateKeyDer<'static> {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&key.to_bytes());
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}

/// A client that trusts `ca` and presents `cert` (or nothing).
fn custom_client(ca: &CaCert, cert: Option<(Vec<u8>, &SigningKey)>) -> Arc<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustCa(ca.clone())));
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((der, key)) => builder
            .with_client_auth_cert(vec![CertificateDer::from(der)], pkcs8(key))
            .unwrap(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    Arc::new(config)
}

/// The node side of a client: `Net` as `Net::load` builds it, with the TLS
/// client swapped for `client`. `as_ca` is the CA whose certificate the
/// client checks the server's identity and entries against.
fn client_net(as_ca: Enrollment, client: Arc<ClientConfig>) -> Net {
    let revocations = RevocationHandle::empty();
    Net {
        server: sentinel_certs::server_config(&as_ca, &revocations, FreshnessPolicy::Lenient)
            .unwrap(),
        client,
        trust: Arc::new(CaTrust::new(as_ca.ca.clone())),
        enrollment: as_ca,
        revocations,
        link_rate: None,
    }
}

/// A client as `Net::load` builds it for the enrollment `e`.
fn standard_client(e: Enrollment) -> Net {
    let client =
        sentinel_certs::client_config(&e, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    client_net(e, client)
}

/// A client store with one entry of its own, so that a session that got
/// through would have something to hand over.
fn client_store(author_key: SigningKey) -> (TempDir, Arc<Mutex<Node>>) {
    let dir = TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), author_key).unwrap();
    node.report(
        &new_event("from the client", 1.0, 2.0),
        ev(9_999),
        None,
        now_ms(),
    )
    .unwrap();
    (dir, Arc::new(Mutex::new(node)))
}

/// Runs `sync_once` from a client that must be refused, then dials once
/// more with the same TLS client to read the reason the server closed the
/// connection with. Checks that the server stored nothing and ran no
/// session, and that the client got nothing. Returns that reason.
///
/// The reason is read from the close rather than from `sync_once`'s error:
/// in TLS 1.3 the client finishes its handshake before the server judges
/// the client's certificate, and when the refusal reaches `sync_once`
/// while it writes its first frame, its error says only "network:
/// connection lost" (see the report that came with this file).
async fn refused(server: &Server, a: &Peer, client: Net, key: SigningKey) -> String {
    let before = a.stats();
    let (_dir, store) = client_store(key);
    let result = timeout(
        HANG,
        net::sync_once(store.clone(), &client, server.addr, |_| {}),
    )
    .await
    .expect("the refused sync hung");
    let err = match result {
        Ok(s) => panic!("a peer that must be refused synced: {s:?}"),
        Err(e) => e.to_string(),
    };
    let endpoint =
        quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client.client.clone()).unwrap();
    let reason = timeout(HANG, async {
        match quic::connect(&endpoint, server.addr).await {
            Err(e) => e.to_string(),
            Ok(conn) => conn.closed().await.to_string(),
        }
    })
    .await
    .expect("the server neither refused nor closed the connection");
    eprintln!("refused: sync_once said {err:?}; the close said {reason:?}");
    assert!(err.starts_with("sync: "), "{err}");
    assert_eq!(a.stats(), before, "the server stored something: {reason}");
    assert!(server.sessions().is_empty(), "a session ran: {reason}");
    // Nor did the client get anything from the server.
    assert_eq!(store.lock().unwrap().stats().unwrap().entries, 1);
    reason
}

struct Refusals {
    ca: Ca,
    a: Peer,
    server: Server,
}

fn refusals(seed: u8) -> Refusals {
    let ca = deployment("Sentinel test CA", seed);
    let a = Peer::new(&ca, "node-a", seed + 1);
    a.report(1_000, 2);
    let server = Server::start(&a);
    Refusals { ca, a, server }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_a_certificate_is_refused() {
    let _t = timed("refuse_no_certificate");
    let r = refusals(30);
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 32);
    let client = client_net(some, custom_client(r.ca.cert(), None));
    let err = refused(&r.server, &r.a, client, key(33)).await;
    assert!(err.contains("peer sent no certificates"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_client_is_refused() {
    let _t = timed("refuse_self_signed");
    let r = refusals(40);
    // Self-signed, and even under the deployment CA's own name.
    let own = key(42);
    let fake = Ca::create(
        r.ca.cert().name(),
        now_ms() - DAY,
        now_ms() + YEAR,
        own.clone(),
    )
    .unwrap();
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 43);
    let client = client_net(
        some,
        custom_client(r.ca.cert(), Some((fake.cert().der().to_vec(), &own))),
    );
    let err = refused(&r.server, &r.a, client, own).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_from_another_ca_is_refused() {
    let _t = timed("refuse_other_ca");
    let r = refusals(50);
    let theirs = deployment("Sentinel test CA", 52);
    let stranger = issue(&theirs, DeviceRole::Node, "node-x", 53);
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 54);
    let client = client_net(
        some,
        custom_client(
            r.ca.cert(),
            Some((stranger.cert_der.clone(), &stranger.key)),
        ),
    );
    let err = refused(&r.server, &r.a, client, stranger.key.clone()).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_client_is_refused() {
    let _t = timed("refuse_expired");
    let r = refusals(60);
    let now = now_ms();
    let old =
        r.ca.enroll(
            DeviceRole::Node,
            "old",
            key(62),
            now - 30 * DAY,
            now - DAY,
            now,
        )
        .unwrap();
    let k = old.key.clone();
    let err = refused(&r.server, &r.a, standard_client(old), k).await;
    assert!(err.contains("certificate expired"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_not_yet_valid_client_is_refused() {
    let _t = timed("refuse_not_yet_valid");
    let r = refusals(70);
    let now = now_ms();
    let early =
        r.ca.enroll(
            DeviceRole::Node,
            "early",
            key(72),
            now + DAY,
            now + 30 * DAY,
            now,
        )
        .unwrap();
    let k = early.key.clone();
    let err = refused(&r.server, &r.a, standard_client(early), k).await;
    assert!(err.contains("certificate not valid yet"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_client_is_refused_at_the_handshake() {
    let _t = timed("refuse_revoked");
    let ca = deployment("Sentinel test CA", 80);
    let a = Peer::new(&ca, "node-a", 81);
    a.report(1_000, 2);
    let bad = issue(&ca, DeviceRole::Node, "node-lost", 82);
    let list = RevocationList {
        number: 1,
        issued_ms: now_ms(),
        revoked: vec![Revoked {
            key: bad.identity.author,
            last_valid_seq: 0,
            reason: "device lost".into(),
        }],
    }
    .sign(&ca)
    .unwrap();
    // Stored before `Net::load`, which hands it to the TLS verifiers.
    a.node
        .lock()
        .unwrap()
        .set_revocation_list(list.clone())
        .unwrap();
    let server = Server::start(&a);
    let k = bad.key.clone();
    let err = refused(&server, &a, standard_client(bad), k).await;
    assert!(err.contains("invalid peer certificate: Revoked"), "{err}");
    assert_eq!(
        a.node.lock().unwrap().revocation_list().unwrap(),
        Some(list)
    );

    // The same server still serves a peer in good standing.
    let good = Peer::new(&ca, "node-b", 83);
    let s = sync(&good, server.addr).await;
    assert_eq!(s.received, 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_cannot_write_events_its_entry_is_quarantined() {
    let _t = timed("sensor_event_quarantined");
    let r = refusals(90);
    let sensor = issue(&r.ca, DeviceRole::Sensor, "sensor-1", 92);
    let (_dir, store) = client_store(sensor.key.clone());
    // The sensor's store holds its certificate, so the session sends it
    // along: the entry is refused for its role, not for an unknown author.
    store
        .lock()
        .unwrap()
        .add_certificates(vec![(sensor.identity.author, sensor.cert_der.clone())])
        .unwrap();
    let before = r.a.stats();
    let client = standard_client(sensor);
    let s = timeout(
        HANG,
        net::sync_once(store.clone(), &client, r.server.addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .expect("the handshake of a certified sensor succeeds");
    assert_eq!(s.peer_name, "node-a");

    eventually("A to report the session", || {
        !r.server.sessions().is_empty()
    })
    .await;
    let seen = &r.server.sessions()[0];
    assert_eq!(
        (seen.received, seen.applied, seen.quarantined),
        (1, 0, 1),
        "{seen:?}"
    );
    let after = r.a.stats();
    assert_eq!(after.quarantined, 1);
    assert_eq!(after.heads_digest, before.heads_digest);
    assert_eq!(
        (after.entries, after.events),
        (before.entries, before.events)
    );
    let node = r.a.node.lock().unwrap();
    assert!(node.show(ev(9_999)).is_err(), "the sensor's event appeared");
    let (code, reason): (String, String) = node
        .store()
        .conn()
        .query_row("SELECT reason_code, reason FROM quarantine", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(code, "role_not_allowed");
    assert!(reason.contains("sensor"), "{reason}");
}
