//! The configurations under quinn, over loopback: what sync will do.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls_pki_types::CertificateDer;
use sentinel_certs::{
    client_config_with_time, peer_identity, server_config_with_time, CaCert, DeviceRole,
    Enrollment, FreshnessPolicy, RevocationHandle,
};

use crate::common::{at, ca, enroll, signed_list, T0};

fn endpoints(
    client: &Enrollment,
    server: &Enrollment,
    server_revocations: &RevocationHandle,
) -> (quinn::Endpoint, quinn::Endpoint) {
    let none = RevocationHandle::empty();
    let s = server_config_with_time(server, server_revocations, FreshnessPolicy::Lenient, at(T0))
        .unwrap();
    let c = client_config_with_time(client, &none, FreshnessPolicy::Lenient, at(T0)).unwrap();
    let s = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(s).unwrap()));
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = quinn::Endpoint::server(s, loopback).unwrap();
    let mut client = quinn::Endpoint::client(loopback).unwrap();
    client.set_default_client_config(quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(c).unwrap(),
    )));
    (client, server)
}

fn identity_of(conn: &quinn::Connection, ca: &CaCert) -> sentinel_certs::Identity {
    let any = conn.peer_identity().unwrap();
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().unwrap();
    peer_identity(&certs, ca).unwrap()
}

/// Sends one message on a new stream and reads the echo back.
async fn ping(conn: &quinn::Connection) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(b"hello").await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    recv.read_to_end(64).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn quinn_connects_and_each_side_sees_the_other() {
    let ca = ca("D", 1);
    let node = enroll(&ca, DeviceRole::Node, "node-7", 7);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let (client, server) = endpoints(&node, &hub, &RevocationHandle::empty());
    let addr = server.local_addr().unwrap();
    let ca_cert = ca.cert().clone();
    let accept = tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        let seen = identity_of(&conn, &ca_cert);
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let msg = recv.read_to_end(64).await.unwrap();
        send.write_all(&msg).await.unwrap();
        send.finish().unwrap();
        conn.closed().await;
        seen
    });
    let run = async {
        let conn = client.connect(addr, "127.0.0.1").unwrap().await.unwrap();
        assert_eq!(identity_of(&conn, ca.cert()), hub.identity);
        assert_eq!(ping(&conn).await.unwrap(), b"hello");
        conn.close(0u32.into(), b"done");
        accept.await.unwrap()
    };
    let seen = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap();
    assert_eq!(seen, node.identity);
}

#[tokio::test]
async fn quinn_refuses_a_revoked_client() {
    let ca = ca("D", 1);
    let node = enroll(&ca, DeviceRole::Node, "node-7", 7);
    let hub = enroll(&ca, DeviceRole::Hub, "hub-1", 8);
    let revoked =
        RevocationHandle::from_signed(&signed_list(&ca, 1, T0, &[&node]), ca.cert()).unwrap();
    let (client, server) = endpoints(&node, &hub, &revoked);
    let addr = server.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let incoming = server.accept().await.unwrap();
        incoming.await.map(|_| ()).map_err(|e| e.to_string())
    });
    let run = async {
        // In TLS 1.3 the client may finish its handshake before the server
        // judges its certificate: the refusal shows at the latest on the
        // first stream.
        let outcome = match client.connect(addr, "127.0.0.1").unwrap().await {
            Err(e) => Err(e.to_string()),
            Ok(conn) => ping(&conn).await.map(|_| ()),
        };
        (outcome, accept.await.unwrap())
    };
    let (client_side, server_side) = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap();
    assert!(client_side.is_err(), "the revoked client got through");
    let server_err = server_side.unwrap_err();
    assert!(server_err.contains("Revoked"), "{server_err}");
}
