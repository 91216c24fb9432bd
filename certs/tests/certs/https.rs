//! TLS server certificates for the hub's HTTPS API: what the certificate
//! holds, that it verifies with rustls' WebPKI verifier against the
//! deployment CA as a root (and only that CA, only for its names, only
//! while valid), a real in-memory handshake with it, and the refusals of
//! the library and of `sentinel-certs issue-https`.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use sentinel_certs::{
    Ca, CaCert, CertsError, HttpsCert, HttpsIssueError, HttpsNames, Password, CA_CERT_FILE,
    MAX_HTTPS_NAMES,
};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::{at, ca, handshake, key, DAY, T0};

fn names(dns: &[&str], ips: &[&str]) -> HttpsNames {
    let dns: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
    let ips: Vec<IpAddr> = ips.iter().map(|s| s.parse().unwrap()).collect();
    HttpsNames::new(&dns, &ips).unwrap()
}

/// A certificate for `hub.example.org`, 10.0.0.7 and ::1, valid from 10
/// days before [`T0`] to 90 days after.
fn issue(ca: &Ca) -> HttpsCert {
    ca.issue_https(
        "hub-north",
        &names(&["Hub.Example.org"], &["10.0.0.7", "::1"]),
        T0 - 10 * DAY,
        T0 + 90 * DAY,
        T0,
    )
    .unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verifier(root: &CaCert) -> Arc<WebPkiServerVerifier> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.der().to_vec()))
        .unwrap();
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap()
}

fn unix(ms: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_millis(ms))
}

#[test]
fn the_certificate_names_the_hub_serves_tls_and_has_a_p256_key() {
    let ca = ca("North", 1);
    let issued = issue(&ca);
    let (rest, cert) = X509Certificate::from_der(issued.cert_der()).unwrap();
    assert!(rest.is_empty());

    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
            other => panic!("unexpected name {other:?}"),
        }
    }
    assert_eq!(dns, ["hub.example.org"], "DNS names are lower-cased");
    let v6: IpAddr = "::1".parse().unwrap();
    let IpAddr::V6(v6) = v6 else { unreachable!() };
    assert_eq!(ips, [vec![10, 0, 0, 7], v6.octets().to_vec()]);

    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    assert!(!eku.client_auth, "a web server certificate, not a device");
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature());
    assert!(!ku.key_cert_sign());
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    assert_eq!(cert.issuer().as_raw(), ca.cert().subject_der());
    assert_eq!(
        cert.validity().not_before.timestamp() as u64 * 1000,
        T0 - 10 * DAY
    );
    assert_eq!(
        cert.validity().not_after.timestamp() as u64 * 1000,
        T0 + 90 * DAY
    );
    assert_eq!(cert.subject().to_string(), "CN=hub-north");

    // ECDSA P-256, and the key file's key is the certificate's key.
    let spki = cert.public_key();
    assert_eq!(spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .as_oid()
        .unwrap();
    assert_eq!(curve, OID_EC_P256);
    let key_pem = issued.key_pem().unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(key.public_key_raw(), &spki.subject_public_key.data[..]);
    assert!(!format!("{issued:?}").contains(&key_pem[30..60]));

    // Two certificates never share a key.
    let again = issue(&ca);
    assert_ne!(again.key_pkcs8_der(), issued.key_pkcs8_der());
}

#[test]
fn the_chain_verifies_against_its_ca_only_for_its_names_while_valid() {
    let ca = ca("North", 1);
    let issued = issue(&ca);
    let leaf = CertificateDer::from(issued.cert_der().to_vec());
    let chain = [CertificateDer::from(ca.cert().der().to_vec())];
    let verify = |root: &CaCert, name: &str, ms: u64| {
        verifier(root).verify_server_cert(
            &leaf,
            &chain,
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            unix(ms),
        )
    };
    for name in ["hub.example.org", "HUB.example.org", "10.0.0.7", "::1"] {
        verify(ca.cert(), name, T0).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    verify(ca.cert(), "hub.example.org", T0 + 90 * DAY).unwrap();

    let refused = |result: Result<_, rustls::Error>| match result {
        Err(rustls::Error::InvalidCertificate(e)) => e,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted"),
    };
    assert!(matches!(
        refused(verify(ca.cert(), "other.example.org", T0)),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    ));
    assert!(matches!(
        refused(verify(ca.cert(), "10.0.0.8", T0)),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    ));
    assert!(matches!(
        refused(verify(ca.cert(), "hub.example.org", T0 + 91 * DAY)),
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    ));
    assert!(matches!(
        refused(verify(ca.cert(), "hub.example.org", T0 - 11 * DAY)),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
    ));
    let other = self::ca("Other", 2);
    assert_eq!(
        refused(verify(other.cert(), "hub.example.org", T0)),
        CertificateError::UnknownIssuer
    );
}

#[test]
fn a_rustls_client_completes_a_handshake_with_it() {
    let ca = ca("North", 1);
    let issued = issue(&ca);
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(issued.cert_der().to_vec()),
                CertificateDer::from(ca.cert().der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_pkcs8_der().to_vec())),
        )
        .unwrap();
    let client_for = |root: &CaCert| {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(root.der().to_vec()))
            .unwrap();
        Arc::new(
            ClientConfig::builder_with_details(provider(), at(T0))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    let server = Arc::new(server);
    // The helper dials 10.0.0.7, one of the certificate's names.
    let ok = handshake(&client_for(ca.cert()), &server);
    assert!(
        ok.succeeded(),
        "{:?} {:?}",
        ok.client_error,
        ok.server_error
    );
    let other = self::ca("Other", 2);
    let refused = handshake(&client_for(other.cert()), &server);
    assert!(matches!(
        refused.client_error,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    ));
}

#[test]
fn the_library_refuses_no_names_bad_names_and_validity_outside_the_ca() {
    assert!(matches!(
        HttpsNames::new(&[], &[]),
        Err(HttpsIssueError::NoNames)
    ));
    for bad in [
        "",
        "bad_name!",
        "*.example.org",
        "hub example.org",
        "10.0.0.1",
    ] {
        assert!(
            matches!(
                HttpsNames::new(&[bad.to_string()], &[]),
                Err(HttpsIssueError::BadDnsName(n)) if n == bad
            ),
            "{bad:?}"
        );
    }
    let many: Vec<String> = (0..=MAX_HTTPS_NAMES)
        .map(|i| format!("h{i}.example"))
        .collect();
    assert!(matches!(
        HttpsNames::new(&many, &[]),
        Err(HttpsIssueError::TooManyNames { .. })
    ));
    let only_ip = names(&[], &["192.0.2.1", "192.0.2.1"]);
    assert_eq!(only_ip.ips().len(), 1, "duplicates dropped");

    let ca = ca("North", 1);
    let n = names(&["hub.example.org"], &[]);
    let at = |from: u64, until: u64, now: u64| ca.issue_https("hub", &n, from, until, now);
    assert!(matches!(
        at(T0, T0 + 400 * DAY, T0),
        Err(HttpsIssueError::Certs(CertsError::ValidityOutsideCa { .. }))
    ));
    assert!(matches!(
        at(T0 - 31 * DAY, T0 + DAY, T0),
        Err(HttpsIssueError::Certs(CertsError::ValidityOutsideCa { .. }))
    ));
    assert!(matches!(
        at(T0 + DAY, T0, T0),
        Err(HttpsIssueError::Certs(CertsError::InvalidValidity { .. }))
    ));
    assert!(matches!(
        at(T0, T0 + DAY, T0 + 366 * DAY),
        Err(HttpsIssueError::Certs(CertsError::CaExpired { .. }))
    ));
    assert!(matches!(
        ca.issue_https("", &n, T0, T0 + DAY, T0),
        Err(HttpsIssueError::Certs(CertsError::InvalidName(_)))
    ));
}

#[test]
fn written_files_are_the_chain_and_an_owner_only_key_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("hub.pem"), dir.path().join("hub.key"));
    let ca = ca("North", 1);
    let issued = issue(&ca);
    issued.write(&cert_path, &key_path).unwrap();
    let chain = std::fs::read_to_string(&cert_path).unwrap();
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert_eq!(chain, issued.chain_pem().unwrap());
    assert!(chain.ends_with(&ca.cert().to_pem()), "the CA comes last");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key, *issued.key_pem().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Neither file is replaced, and a refusal writes nothing.
    assert!(matches!(
        issue(&ca).write(&cert_path, &dir.path().join("new.key")),
        Err(CertsError::AlreadyExists { path }) if path == cert_path
    ));
    assert!(!dir.path().join("new.key").exists());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
}

// The command line.

const CA_PW: &str = "ca secret";

fn run(args: &[&str], ca_password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sentinel-certs"))
        .args(args)
        .env("SENTINEL_CA_PASSWORD", ca_password)
        .env_remove("SENTINEL_BUNDLE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No password on standard input: the command must not need one.
    child.stdin.take().unwrap().write_all(b"").unwrap();
    child.wait_with_output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn issue_https_writes_a_verifiable_pair_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Ca::create("North", now - DAY, now + 100 * DAY, key(1))
        .unwrap()
        .save(&ca_dir, &Password::new(CA_PW).unwrap())
        .unwrap();
    let (cert, key_file) = (dir.path().join("hub.pem"), dir.path().join("hub.key"));
    let https = |extra: &[&str], password: &str| {
        let mut args = vec![
            "issue-https",
            "--ca-dir",
            s(&ca_dir),
            "--name",
            "hub-north",
            "--out-cert",
            s(&cert),
            "--out-key",
            s(&key_file),
        ];
        args.extend_from_slice(extra);
        run(&args, password)
    };
    let failed = |out: Output| {
        assert!(!out.status.success(), "unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    assert!(failed(https(&[], CA_PW)).contains("--dns HOST"));
    assert!(failed(https(&["--ip", "10.0.0.300"], CA_PW)).contains("10.0.0.300"));
    assert!(failed(https(&["--dns", "bad_name!"], CA_PW)).contains("bad_name!"));
    assert!(
        failed(https(&["--dns", "hub.example.org", "--days", "101"], CA_PW))
            .contains("--days 99 or fewer")
    );
    assert!(failed(https(&["--dns", "hub.example.org"], "wrong")).contains("wrong CA password"));
    assert!(
        !cert.exists() && !key_file.exists(),
        "refusals write nothing"
    );

    let out = https(
        &[
            "--dns",
            "hub.example.org",
            "--ip",
            "10.0.0.7",
            "--days",
            "30",
        ],
        CA_PW,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hub.example.org, 10.0.0.7"), "{stdout}");

    // The chain verifies against the CA directory's certificate, now.
    let ca_cert = CaCert::load(&ca_dir.join(CA_CERT_FILE)).unwrap();
    let pem = std::fs::read(&cert).unwrap();
    let chain: Vec<CertificateDer> = rustls_pki_types::pem::PemObject::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].as_ref(), ca_cert.der());
    verifier(&ca_cert)
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from("10.0.0.7").unwrap(),
            &[],
            UnixTime::now(),
        )
        .unwrap();
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let span = (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp())
        as u64
        * 1000;
    assert!(
        span > 30 * DAY && span <= 30 * DAY + 2 * 60 * 60 * 1000,
        "{span}"
    );
    let key_pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    // Existing files are never overwritten; the alias `https` works.
    let again = run(
        &[
            "https",
            "--ca-dir",
            s(&ca_dir),
            "--name",
            "hub-north",
            "--dns",
            "hub.example.org",
            "--out-cert",
            s(&dir.path().join("new.pem")),
            "--out-key",
            s(&key_file),
        ],
        CA_PW,
    );
    assert!(failed(again).contains("exists already"));
    assert!(!dir.path().join("new.pem").exists());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_pem);
}
