//! The HTTP API over HTTPS (`sentinel_hub::https`) on a real loopback
//! socket, with a server certificate from a test deployment CA
//! (`Ca::issue_https`, as `sentinel-certs issue-https` makes it) and a real
//! rustls client that trusts that CA: `/healthz` and a login over HTTP/1.1
//! and HTTP/2, TLS 1.2 and 1.3, the client's address reaching the router;
//! plain HTTP, a client trusting another CA and a stalled client all fail
//! without stopping the accept loop; shutdown; PEM files that do not load
//! are named; and the binary serving HTTPS from its configuration, or
//! refusing to start on half a configuration or a bad file. Every wait is
//! bounded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use sentinel_certs::{Bundle, Ca, CaCert, HttpsNames, Password};
use sentinel_http::serve::{serve, ServeOptions};
use sentinel_http::testing::{lines_within, output_within};
use sentinel_hub::api::{router_with, ApiOptions, ApiState};
use sentinel_hub::https::{self, HttpsError};
use sentinel_hub::own::OwnChain;
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::PgStore;
use sentinel_schema::{DeviceRole, PersonRole};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::e2e::{deployment, issue, now_ms};
use crate::fresh_store;

const DAY: u64 = 24 * 60 * 60 * 1000;
const PASSWORD: &str = "a long enough password";
/// Longest any one step may take before the test calls it hung.
const STEP: Duration = Duration::from_secs(10);

/// Writes a server certificate for `localhost` and 127.0.0.1 from `ca`
/// into `dir`: (chain, key).
fn server_files(ca: &Ca, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let names = HttpsNames::new(&["localhost".into()], &["127.0.0.1".parse().unwrap()]).unwrap();
    let now = now_ms();
    let cert = ca
        .issue_https("hub-https", &names, now - DAY, now + 30 * DAY, now)
        .unwrap();
    let paths = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    cert.write(&paths.0, &paths.1).unwrap();
    paths
}

/// Answers the client address the router sees (500 if it sees none).
async fn whoami(ConnectInfo(client): ConnectInfo<SocketAddr>) -> String {
    client.to_string()
}

/// A hub API served over HTTPS on 127.0.0.1:0.
struct Server {
    addr: SocketAddr,
    ca: Ca,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _dir: TempDir,
}

impl Server {
    async fn start(store: &PgStore) -> Server {
        Server::start_with(store, ServeOptions::default()).await
    }

    /// A server within the bounds of `options`.
    async fn start_with(store: &PgStore, options: ServeOptions) -> Server {
        let ca = deployment("https test CA", 61);
        let dir = TempDir::new().unwrap();
        let (cert, key) = server_files(&ca, dir.path(), "hub");
        let tls = https::server_config(&cert, &key).unwrap();

        let own = Arc::new(
            OwnChain::new(
                store.clone(),
                issue(&ca, DeviceRole::Hub, "hub-1", 62),
                now_ms(),
            )
            .await
            .unwrap(),
        );
        let hash = hash_password(PASSWORD).unwrap();
        assert!(store
            .create_account("chief", &hash, now_ms())
            .await
            .unwrap());
        grant_role(&own, "chief", PersonRole::Admin, "test", now_ms())
            .await
            .unwrap();
        let app = router_with(
            ApiState::new(store.clone(), Some(own)),
            &ApiOptions::default(),
        )
        .merge(Router::new().route("/whoami", get(whoami)));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Some(tls), app, options, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            ca,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }
}

fn client_config(
    ca: &CaCert,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A TLS connection to `addr`, dialled as `name`, trusting `ca`.
async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    timeout(STEP, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("the handshake ends in time")
}

/// Sends one request over HTTP/1.1 or HTTP/2, as the ALPN result says;
/// answers the status and the body.
async fn send(
    tls: TlsStream<TcpStream>,
    request: Request<Body>,
) -> hyper::Result<(StatusCode, String)> {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(request).await?
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn get_req(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::get(format!("https://localhost{uri}")).header(header::HOST, "localhost");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.body(Body::empty()).unwrap()
}

/// One request on a fresh connection.
async fn call(
    server: &Server,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
    request: Request<Body>,
) -> (StatusCode, String) {
    let config = client_config(server.ca.cert(), alpn, versions);
    let tls = connect(server.addr, "localhost", config).await.unwrap();
    timeout(STEP, send(tls, request))
        .await
        .expect("an answer in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_https_with_http1_and_http2() {
    let (_db, store) = fresh_store().await;
    let server = Server::start(&store).await;
    let http1: &[&[u8]] = &[b"http/1.1"];

    // HTTP/1.1, TLS 1.3: health, then a real login and an admin route.
    let config = client_config(server.ca.cert(), http1, BOTH);
    let tls = connect(server.addr, "localhost", config).await.unwrap();
    let (_, conn) = tls.get_ref();
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let (status, body) = send(tls, get_req("/healthz", None)).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    let login = Request::post("https://localhost/api/v1/login")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"name": "chief", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let (status, body) = call(&server, http1, BOTH, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &server,
        http1,
        BOTH,
        get_req("/api/v1/timeline?limit=5", Some(&token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&server, http1, BOTH, get_req("/api/v1/timeline", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // HTTP/2 through ALPN `h2`, dialled by IP address this time.
    let config = client_config(server.ca.cert(), &[b"h2", b"http/1.1"], BOTH);
    let tls = connect(server.addr, "127.0.0.1", config).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = send(tls, get_req("/api/v1/timeline?limit=1", Some(&token)))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");

    // TLS 1.2 clients are served too.
    let config = client_config(server.ca.cert(), http1, &[&rustls::version::TLS12]);
    let tls = connect(server.addr, "localhost", config).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let (status, _) = send(tls, get_req("/healthz", None)).await.unwrap();
    assert_eq!(status, StatusCode::OK);

    // The router sees the client's own address (the rate limit and the
    // request log key on it), over both protocols.
    for alpn in [http1, &[b"h2"]] {
        let config = client_config(server.ca.cert(), alpn, BOTH);
        let tls = connect(server.addr, "localhost", config).await.unwrap();
        let local = tls.get_ref().0.local_addr().unwrap();
        let (status, body) = send(tls, get_req("/whoami", None)).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, local.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_fail_alone_and_shutdown_stops_the_server() {
    let (_db, store) = fresh_store().await;
    let mut server = Server::start(&store).await;

    // A client that connects and never says a word holds a handshake
    // open (for up to `HANDSHAKE_TIMEOUT`); the loop serves others
    // meanwhile, well before that.
    let stalled = TcpStream::connect(server.addr).await.unwrap();
    let quick = Duration::from_secs(3);
    assert!(quick < sentinel_http::serve::HANDSHAKE_TIMEOUT);
    let (status, _) = timeout(
        quick,
        call(&server, &[b"http/1.1"], BOTH, get_req("/healthz", None)),
    )
    .await
    .expect("served while another client stalls");
    assert_eq!(status, StatusCode::OK);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timeout(STEP, plain.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let plain = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(plain))
        .await
        .unwrap();
    tokio::spawn(conn);
    let sent = timeout(STEP, sender.send_request(get_req("/healthz", None)))
        .await
        .unwrap();
    assert!(sent.is_err(), "plain HTTP got an answer: {sent:?}");

    // A client that trusts another CA refuses the server.
    let other = deployment("another CA", 63);
    let config = client_config(other.cert(), &[b"http/1.1"], BOTH);
    let refused = connect(server.addr, "localhost", config).await.unwrap_err();
    let cause = refused
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert_eq!(
        cause,
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{refused}"
    );
    // So does one that dialled a name the certificate does not hold.
    let config = client_config(server.ca.cert(), &[b"http/1.1"], BOTH);
    assert!(connect(server.addr, "hub.example.org", config)
        .await
        .is_err());

    // After all that, and with the stalled client still there, the server
    // answers.
    let (status, _) = call(&server, &[b"http/1.1"], BOTH, get_req("/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    drop(stalled);

    // Shutdown: the loop returns and the port is closed.
    server.stop.take().unwrap().send(()).unwrap();
    timeout(STEP, &mut server.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}

/// The accept loop's bounds hold over TLS as on plain HTTP
/// (`sentinel_http::serve`; plain HTTP in `http/tests/serve.rs`): a
/// handshake that stalls, headers sent byte by byte after the handshake,
/// a connection idling after its answer, and one connection more than
/// the cap are each cut off, and the server goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_tls_clients_are_cut_off() {
    let (_db, store) = fresh_store().await;
    let short = Duration::from_millis(300);
    let server = Server::start_with(
        &store,
        ServeOptions {
            max_connections: 3,
            handshake_timeout: short,
            header_timeout: short,
            idle_timeout: short,
            ..ServeOptions::default()
        },
    )
    .await;
    let http1: &[&[u8]] = &[b"http/1.1"];
    let closes = |mut s: TcpStream| async move {
        let mut answer = Vec::new();
        timeout(STEP, s.read_to_end(&mut answer))
            .await
            .expect("the server closes it")
            .ok();
        answer
    };

    // A handshake that never starts.
    let stalled = TcpStream::connect(server.addr).await.unwrap();
    assert!(closes(stalled).await.is_empty());

    // Headers, a byte every 20 ms, over TLS.
    let config = client_config(server.ca.cert(), http1, BOTH);
    let tls = connect(server.addr, "localhost", config.clone())
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let trickle = tokio::spawn(async move {
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(250)
        );
        for byte in request.bytes() {
            if writer.write_all(&[byte]).await.is_err() || writer.flush().await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    let mut answer = Vec::new();
    let _ = timeout(STEP, reader.read_to_end(&mut answer))
        .await
        .expect("the slow client is cut off");
    assert!(
        !trickle.is_finished(),
        "cut off before its headers were whole"
    );
    assert!(!String::from_utf8_lossy(&answer).contains(" 200 "));
    trickle.abort();

    // A connection idling after its answer is closed.
    let mut tls = connect(server.addr, "localhost", config.clone())
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timeout(STEP, tls.read_to_end(&mut answer))
        .await
        .expect("the idle connection is closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));

    // Three open connections fill the cap; a fourth is closed at once,
    // before any handshake.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            connect(server.addr, "localhost", config.clone())
                .await
                .unwrap(),
        );
    }
    let surplus = TcpStream::connect(server.addr).await.unwrap();
    assert!(closes(surplus).await.is_empty());
    drop(held);
    // The slots free as the server sees them go; then it answers again.
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let config = client_config(server.ca.cert(), http1, BOTH);
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        if let Ok(Ok(tls)) = timeout(STEP, TlsConnector::from(config).connect(name, tcp)).await {
            if let Ok(Ok((status, _))) = timeout(STEP, send(tls, get_req("/healthz", None))).await {
                assert_eq!(status, StatusCode::OK);
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot freed");
    }
}

#[test]
fn pem_files_that_do_not_load_are_named() {
    let ca = deployment("pem test CA", 64);
    let dir = TempDir::new().unwrap();
    let (cert, key) = server_files(&ca, dir.path(), "good");
    https::server_config(&cert, &key).unwrap();
    let (other_cert, other_key) = server_files(&ca, dir.path(), "other");

    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    let cases: [(&Path, &Path, &Path); 6] = [
        (&missing, &key, &missing),
        (&cert, &missing, &missing),
        (&garbage, &key, &garbage),
        (&broken, &key, &broken),
        // A certificate file is not a key file, and the other way round.
        (&cert, &cert, &cert),
        (&key, &key, &key),
    ];
    for (c, k, named) in cases {
        let e = https::server_config(c, k).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&named.display().to_string()),
            "{} + {}: {text}",
            c.display(),
            k.display()
        );
    }
    assert!(matches!(
        https::server_config(&missing, &key),
        Err(HttpsError::Read { path, .. }) if path == missing
    ));
    assert!(matches!(
        https::server_config(&cert, &garbage),
        Err(HttpsError::BadKey { path, .. }) if path == garbage
    ));
    // A key that belongs to another certificate.
    match https::server_config(&cert, &other_key) {
        Err(HttpsError::Pair {
            cert: c, key: k, ..
        }) => {
            assert_eq!((c, k), (cert.clone(), other_key.clone()));
        }
        other => panic!("unexpected {other:?}"),
    }
    https::server_config(&other_cert, &other_key).unwrap();
}

#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_refused_naming_the_file_and_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let ca = deployment("key mode test CA", 65);
    let dir = TempDir::new().unwrap();
    let (cert, key) = server_files(&ca, dir.path(), "hub");
    https::server_config(&cert, &key).unwrap();
    for open in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(open)).unwrap();
        let e = https::server_config(&cert, &key).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(&e, HttpsError::KeyReadableByOthers { path, mode } if *path == key && *mode == open),
            "{open:o}: {e:?}"
        );
        assert!(text.contains(&key.display().to_string()), "{text}");
        assert!(text.contains(&format!("{open:o}")), "{text}");
    }
    // The certificate chain is public: its mode does not matter.
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    https::server_config(&cert, &key).unwrap();
}

/// Kills the child process when dropped.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_https_when_configured_and_refuses_half_a_configuration() {
    let db = TestDatabase::create().await.unwrap();
    let ca = deployment("binary https CA", 65);
    let dir = TempDir::new().unwrap();
    let bundle = dir.path().join("hub.bundle");
    let password = "correct horse battery staple";
    Bundle::export(
        &bundle,
        &issue(&ca, DeviceRole::Hub, "hub-1", 66),
        &Password::new(password).unwrap(),
    )
    .unwrap();
    let (cert, key) = server_files(&ca, dir.path(), "hub-https");
    let hub = |https: &[(&str, &Path)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"));
        c.args(["serve", "--json", "--http", "127.0.0.1:0"])
            .env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", password)
            .env("SENTINEL_LISTEN", "127.0.0.1:0")
            .env("SENTINEL_MEDIA_DIR", dir.path().join("media"))
            .env_remove("SENTINEL_HTTPS_CERT")
            .env_remove("SENTINEL_HTTPS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in https {
            c.env(k, v);
        }
        c
    };

    // Half a configuration, or a file that is not a key: exit code 2,
    // naming what is wrong, before anything is served (a hub that serves
    // instead fails the test after the bound, rather than hanging it).
    let bound = Duration::from_secs(120);
    let out = output_within(
        &mut hub(&[("SENTINEL_HTTPS_CERT", &cert)]),
        bound,
        "hub with a certificate and no key",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SENTINEL_HTTPS_KEY"));
    let out = output_within(
        &mut hub(&[
            ("SENTINEL_HTTPS_CERT", &cert),
            ("SENTINEL_HTTPS_KEY", &cert),
        ]),
        bound,
        "hub with a certificate as its key",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&cert.display().to_string()), "{err}");
    assert!(out.stdout.is_empty(), "nothing was served");

    let mut child = Reap(
        hub(&[("SENTINEL_HTTPS_CERT", &cert), ("SENTINEL_HTTPS_KEY", &key)])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = lines_within(child.0.stdout.take().unwrap());
    let _sync = lines.next_line(bound, "the hub's sync address");
    let http: Value =
        serde_json::from_str(&lines.next_line(bound, "the hub's HTTP address")).unwrap();
    assert_eq!(http["scheme"], "https", "{http}");
    let addr: SocketAddr = http["http"].as_str().unwrap().parse().unwrap();
    let config = client_config(ca.cert(), &[b"h2", b"http/1.1"], BOTH);
    let tls = connect(addr, "localhost", config).await.unwrap();
    let (status, body) = timeout(STEP, send(tls, get_req("/readyz", None)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));

    // SIGTERM: the hub stops serving and exits cleanly, in time.
    #[cfg(unix)]
    {
        let pid = child.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < STEP, "the hub did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{status:?}");
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
