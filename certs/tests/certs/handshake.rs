//! Real rustls handshakes between configurations built by this crate,
//! driven in memory on a fixed clock.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, ProtocolVersion,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sentinel_certs::{
    client_config_with_time, peer_identity, server_config_with_time, DeviceRole, Enrollment,
    FreshnessPolicy, RevocationHandle, ALPN,
};

use crate::common::{at, ca, enroll, enroll_valid, handshake, signed_list, Handshake, DAY, T0};

fn lenient_pair(
    client: &Enrollment,
    server: &Enrollment,
    revocations: &RevocationHandle,
    now: u64,
) -> Handshake {
    let c =
        client_config_with_time(client, revocations, FreshnessPolicy::Lenient, at(now)).unwrap();
    let s =
        server_config_with_time(server, revocations, FreshnessPolicy::Lenient, at(now)).unwrap();
    handshake(&c, &s)
}

fn refused_with(err: &Option<rustls::Error>, expected: CertificateError) {
    match err {
        Some(rustls::Error::InvalidCertificate(e)) => assert_eq!(*e, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

#[test]
fn two_valid_peers_see_each_other() {
    let ca = ca("D", 1);
    let node = enroll(&ca, DeviceRole::Node, "node-7", 7);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let hs = lenient_pair(&node, &hub, &RevocationHandle::empty(), T0);
    assert!(
        hs.succeeded(),
        "{:?} / {:?}",
        hs.client_error,
        hs.server_error
    );
    assert_eq!(hs.client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(hs.client.alpn_protocol(), Some(ALPN));
    assert_eq!(hs.server.alpn_protocol(), Some(ALPN));
    assert!(!hs.client.is_early_data_accepted());

    let seen_by_server = peer_identity(hs.server.peer_certificates().unwrap(), ca.cert()).unwrap();
    assert_eq!(seen_by_server, node.identity);
    let seen_by_client = peer_identity(hs.client.peer_certificates().unwrap(), ca.cert()).unwrap();
    assert_eq!(seen_by_client, hub.identity);
    assert_eq!(seen_by_client.role, DeviceRole::Hub);
}

#[test]
fn configs_are_tls13_only_without_early_data_or_resumption() {
    let ca = ca("D", 1);
    let e = enroll(&ca, DeviceRole::Node, "n", 7);
    let handle = RevocationHandle::empty();
    let s = server_config_with_time(&e, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let c = client_config_with_time(&e, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    assert_eq!(s.max_early_data_size, 0);
    assert_eq!(s.send_tls13_tickets, 0);
    assert!(!c.enable_early_data);
    assert_eq!(s.alpn_protocols, vec![ALPN.to_vec()]);
    assert_eq!(c.alpn_protocols, vec![ALPN.to_vec()]);

    // TLS 1.3 works: our two configurations agree on it, and a client
    // that offers 1.2 as well is answered in 1.3.
    let hs = handshake(&c, &s);
    assert!(
        hs.succeeded(),
        "{:?} / {:?}",
        hs.client_error,
        hs.server_error
    );
    assert_eq!(hs.client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    let both = any_server_client(&e, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let hs = handshake(&both, &s);
    assert!(
        hs.succeeded(),
        "{:?} / {:?}",
        hs.client_error,
        hs.server_error
    );
    assert_eq!(hs.server.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    // TLS 1.2 is off: a client that offers only 1.2 (with a valid
    // certificate, trusting any server) is refused by our server...
    let tls12 = any_server_client(&e, &[&rustls::version::TLS12]);
    let hs = handshake(&tls12, &s);
    assert!(!hs.succeeded(), "a TLS 1.2-only client got through");
    assert!(
        matches!(hs.server_error, Some(rustls::Error::PeerIncompatible(_))),
        "{:?}",
        hs.server_error
    );
    assert!(hs.client.protocol_version().is_none());
    // ...and our client refuses a server that speaks only 1.2.
    let hs = handshake(&c, &tls12_server(&e));
    assert!(!hs.succeeded(), "our client spoke TLS 1.2");
    assert!(
        matches!(hs.server_error, Some(rustls::Error::PeerIncompatible(_))),
        "{:?} / {:?}",
        hs.client_error,
        hs.server_error
    );

    // Both configurations also build against the system clock.
    assert!(sentinel_certs::server_config(&e, &handle, FreshnessPolicy::Lenient).is_ok());
    assert!(sentinel_certs::client_config(&e, &handle, FreshnessPolicy::MaxAge(DAY)).is_ok());
}

/// `e`'s key as rustls wants it.
fn private_key(e: &Enrollment) -> rustls_pki_types::PrivateKeyDer<'static> {
    rustls_pki_types::PrivateKeyDer::Pkcs8(
        ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&e.key)
            .unwrap()
            .as_bytes()
            .to_vec()
            .into(),
    )
}

/// A client presenting `e`'s certificate, offering `versions` and trusting
/// any server: what a peer built with other settings than ours would be.
fn any_server_client(
    e: &Enrollment,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_client_auth_cert(
                vec![CertificateDer::from(e.cert_der.clone())],
                private_key(e),
            )
            .unwrap();
    c.alpn_protocols = vec![ALPN.to_vec()];
    Arc::new(c)
}

/// A server with `e`'s certificate that speaks TLS 1.2 only.
fn tls12_server(e: &Enrollment) -> Arc<rustls::ServerConfig> {
    let mut s = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(e.cert_der.clone())],
        private_key(e),
    )
    .unwrap();
    s.alpn_protocols = vec![ALPN.to_vec()];
    Arc::new(s)
}

/// Accepts any server, for a client that presents no certificate.
#[derive(Debug)]
struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[test]
fn a_client_without_certificate_is_refused() {
    let ca = ca("D", 1);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let s = server_config_with_time(
        &hub,
        &RevocationHandle::empty(),
        FreshnessPolicy::Lenient,
        at(T0),
    )
    .unwrap();
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_no_client_auth();
    c.alpn_protocols = vec![ALPN.to_vec()];
    let hs = handshake(&Arc::new(c), &s);
    assert_eq!(
        hs.server_error,
        Some(rustls::Error::NoCertificatesPresented)
    );
    // The client learns of it from the alert.
    assert_eq!(
        hs.client_error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    );
}

#[test]
fn a_peer_from_another_ca_is_refused_both_ways() {
    let ours = ca("D", 1);
    let theirs = ca("D", 2);
    let hub = enroll(&ours, DeviceRole::Hub, "hub-1", 8);
    let stranger = enroll(&theirs, DeviceRole::Node, "node-x", 9);
    let handle = RevocationHandle::empty();
    // Stranger as client: our server refuses it.
    let s = server_config_with_time(&hub, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let c = client_config_with_time(&stranger, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let hs = handshake(&c, &s);
    // The stranger's own verifier refuses our hub first (it trusts only
    // its CA); check our side by giving it a client that trusts anyone.
    refused_with(&hs.client_error, CertificateError::UnknownIssuer);

    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer))
            .with_client_auth_cert(
                vec![CertificateDer::from(stranger.cert_der.clone())],
                rustls_pki_types::PrivateKeyDer::Pkcs8(
                    ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger.key)
                        .unwrap()
                        .as_bytes()
                        .to_vec()
                        .into(),
                ),
            )
            .unwrap();
    c.alpn_protocols = vec![ALPN.to_vec()];
    let hs = handshake(&Arc::new(c), &s);
    refused_with(&hs.server_error, CertificateError::UnknownIssuer);
    assert_eq!(
        hs.client_error,
        Some(rustls::Error::AlertReceived(AlertDescription::UnknownCA))
    );
}

#[test]
fn an_expired_client_is_refused() {
    let ca = ca("D", 1);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let old = enroll_valid(&ca, DeviceRole::Node, "old", 9, T0 - 20 * DAY, T0 - DAY);
    let hs = lenient_pair(&old, &hub, &RevocationHandle::empty(), T0);
    refused_with(
        &hs.server_error,
        CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_millis(T0)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_millis(T0 - DAY)),
        },
    );
    assert_eq!(
        hs.client_error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateExpired
        ))
    );
    // The same certificate was fine while it was valid.
    assert!(lenient_pair(&old, &hub, &RevocationHandle::empty(), T0 - 2 * DAY).succeeded());
}

#[test]
fn a_not_yet_valid_peer_is_refused() {
    let ca = ca("D", 1);
    let node = enroll(&ca, DeviceRole::Node, "node", 7);
    let early = enroll_valid(&ca, DeviceRole::Hub, "early", 9, T0 + DAY, T0 + 10 * DAY);
    // The future hub as server: the node (client) refuses it.
    let hs = lenient_pair(&node, &early, &RevocationHandle::empty(), T0);
    refused_with(
        &hs.client_error,
        CertificateError::NotValidYetContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_millis(T0)),
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_millis(T0 + DAY)),
        },
    );
}

#[test]
fn a_revoked_key_is_refused_until_a_list_without_it_arrives() {
    let ca = ca("D", 1);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let node = enroll(&ca, DeviceRole::Node, "node-7", 7);
    let handle =
        RevocationHandle::from_signed(&signed_list(&ca, 1, T0, &[&node]), ca.cert()).unwrap();
    // Configurations are built once; the handle is read at each handshake.
    let s = server_config_with_time(&hub, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let node_handle = RevocationHandle::empty();
    let c = client_config_with_time(&node, &node_handle, FreshnessPolicy::Lenient, at(T0)).unwrap();

    let hs = handshake(&c, &s);
    refused_with(&hs.server_error, CertificateError::Revoked);
    assert_eq!(
        hs.client_error,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRevoked
        ))
    );

    // A newer list that no longer names the key, learned by the same
    // handle, applies to the next handshake with the same configuration.
    handle
        .offer(&signed_list(&ca, 2, T0, &[]), ca.cert())
        .unwrap();
    assert!(handshake(&c, &s).succeeded());

    // And the other way round: the node learns that the hub is revoked.
    node_handle
        .offer(&signed_list(&ca, 3, T0, &[&hub]), ca.cert())
        .unwrap();
    let hs = handshake(&c, &s);
    refused_with(&hs.client_error, CertificateError::Revoked);
}

#[test]
fn an_entry_revocation_refuses_the_next_handshake_and_survives_a_newer_list() {
    let ca = ca("D", 1);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let node = enroll(&ca, DeviceRole::Node, "node-7", 7);
    let handle = RevocationHandle::empty();
    let s = server_config_with_time(&hub, &handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let c = client_config_with_time(
        &node,
        &RevocationHandle::empty(),
        FreshnessPolicy::Lenient,
        at(T0),
    )
    .unwrap();
    assert!(handshake(&c, &s).succeeded());

    // Whatever its last valid seq, a key revoked by an entry is refused at
    // the next handshake with the same configuration.
    handle.add_entry_revocation(sentinel_certs::Revoked {
        key: node.identity.author,
        last_valid_seq: 12,
        reason: "laptop lost".into(),
    });
    refused_with(&handshake(&c, &s).server_error, CertificateError::Revoked);
    // A newer CA list that does not name the key does not let it back in.
    handle
        .offer(&signed_list(&ca, 5, T0, &[]), ca.cert())
        .unwrap();
    refused_with(&handshake(&c, &s).server_error, CertificateError::Revoked);
}

#[test]
fn a_hub_demanding_freshness_refuses_on_a_stale_list_while_a_node_accepts() {
    let ca = ca("D", 1);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let node_a = enroll(&ca, DeviceRole::Node, "node-a", 7);
    let node_b = enroll(&ca, DeviceRole::Node, "node-b", 6);
    let week = 7 * DAY;
    // Every device holds the same list, issued ten days ago.
    let stale = signed_list(&ca, 1, T0 - 10 * DAY, &[]);
    let hub_handle = RevocationHandle::from_signed(&stale, ca.cert()).unwrap();
    let node_handle = RevocationHandle::from_signed(&stale, ca.cert()).unwrap();

    let hub_server =
        server_config_with_time(&hub, &hub_handle, FreshnessPolicy::MaxAge(week), at(T0)).unwrap();
    let node_a_client =
        client_config_with_time(&node_a, &node_handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let hs = handshake(&node_a_client, &hub_server);
    refused_with(
        &hs.server_error,
        CertificateError::ExpiredRevocationListContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_millis(T0)),
            next_update: UnixTime::since_unix_epoch(std::time::Duration::from_millis(
                T0 - 10 * DAY + week,
            )),
        },
    );

    // Two field nodes with the same stale list still reach each other.
    let node_b_server =
        server_config_with_time(&node_b, &node_handle, FreshnessPolicy::Lenient, at(T0)).unwrap();
    assert!(handshake(&node_a_client, &node_b_server).succeeded());

    // An admin loads a fresh list into the hub: peers are accepted again.
    hub_handle
        .offer(&signed_list(&ca, 2, T0 - DAY, &[]), ca.cert())
        .unwrap();
    assert!(handshake(&node_a_client, &hub_server).succeeded());

    // A hub as client applies the same rule to the servers it dials.
    let hub_client = client_config_with_time(
        &hub,
        &RevocationHandle::empty(),
        FreshnessPolicy::MaxAge(week),
        at(T0),
    )
    .unwrap();
    let hs = handshake(&hub_client, &node_b_server);
    assert!(matches!(
        hs.client_error,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredRevocationListContext { .. }
        ))
    ));
}

#[test]
fn freshness_rule_boundaries() {
    use sentinel_certs::{CertError, RevocationList};
    let list = RevocationList {
        number: 1,
        issued_ms: 1_000,
        revoked: vec![],
    };
    let policy = FreshnessPolicy::MaxAge(500);
    assert_eq!(policy.check(&list, 1_500), Ok(()));
    assert_eq!(
        policy.check(&list, 1_501),
        Err(CertError::StaleRevocationList {
            issued_ms: 1_000,
            now_ms: 1_501,
            max_age_ms: 500
        })
    );
    // A list from "the future" (our clock is behind) is fresh.
    assert_eq!(policy.check(&list, 0), Ok(()));
    assert_eq!(FreshnessPolicy::Lenient.check(&list, u64::MAX), Ok(()));
    // The empty list a device starts with is stale for any hub.
    assert!(policy.check(&RevocationList::empty(), T0).is_err());
}
