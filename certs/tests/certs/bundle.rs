use sentinel_certs::{Bundle, CertError, CertsError, DeviceRole, Enrollment, Password};

use crate::common::{ca, enroll, key};

fn password() -> Password {
    Password::new("bundle password").unwrap()
}

#[test]
fn export_open_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node-7.bundle");
    let ca = ca("D", 1);
    let enrollment = enroll(&ca, DeviceRole::Node, "node-7", 7);
    Bundle::export(&path, &enrollment, &password()).unwrap();

    let opened = Bundle::open(&path, &password()).unwrap();
    assert_eq!(opened.ca, *ca.cert());
    assert_eq!(opened.identity, enrollment.identity);
    assert_eq!(opened.cert_der, enrollment.cert_der);
    assert_eq!(opened.key.to_bytes(), key(7).to_bytes());

    let summary = Bundle::summary(&path).unwrap();
    assert_eq!(summary.identity, enrollment.identity);
    assert_eq!(summary.ca, *ca.cert());

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(sentinel_certs::BUNDLE_HEADER));
    assert!(text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(!text.contains("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Debug output never shows the key.
    let debug = format!("{opened:?}");
    assert!(!debug.contains(&hex::encode(key(7).to_bytes())));
    assert!(matches!(
        Bundle::export(&path, &enrollment, &password()),
        Err(CertsError::AlreadyExists { .. })
    ));
}

#[test]
fn wrong_bundle_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    let ca = ca("D", 1);
    Bundle::export(&path, &enroll(&ca, DeviceRole::Sensor, "s", 7), &password()).unwrap();
    assert!(matches!(
        Bundle::open(&path, &Password::new("bundle passwore").unwrap()),
        Err(CertsError::WrongPassword)
    ));
}

#[test]
fn broken_bundles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca_a = ca("D", 1);
    let ca_b = ca("Other", 2);
    let a = enroll(&ca_a, DeviceRole::Node, "a", 7);
    let b = enroll(&ca_b, DeviceRole::Node, "b", 8);
    let path_a = dir.path().join("a");
    let path_b = dir.path().join("b");
    Bundle::export(&path_a, &a, &password()).unwrap();
    Bundle::export(&path_b, &b, &password()).unwrap();
    let text_a = std::fs::read_to_string(&path_a).unwrap();
    let text_b = std::fs::read_to_string(&path_b).unwrap();
    let blocks = |t: &str| -> Vec<String> {
        t.split("-----BEGIN ")
            .skip(1)
            .map(|b| format!("-----BEGIN {b}"))
            .collect()
    };
    let (ba, bb) = (blocks(&text_a), blocks(&text_b));
    let header = format!("{}\n", sentinel_certs::BUNDLE_HEADER);

    // A's CA with B's certificate: not issued by that CA.
    let mixed = dir.path().join("mixed");
    std::fs::write(&mixed, format!("{header}{}{}{}", ba[0], bb[1], ba[2])).unwrap();
    assert!(matches!(
        Bundle::open(&mixed, &password()),
        Err(CertsError::Certificate(CertError::WrongIssuer))
    ));
    // A's certificate with another key.
    let other_key = enroll(&ca_a, DeviceRole::Node, "c", 9);
    let path_c = dir.path().join("c");
    Bundle::export(&path_c, &other_key, &password()).unwrap();
    let bc = blocks(&std::fs::read_to_string(&path_c).unwrap());
    let swapped = dir.path().join("swapped");
    std::fs::write(&swapped, format!("{header}{}{}{}", ba[0], ba[1], bc[2])).unwrap();
    assert!(matches!(
        Bundle::open(&swapped, &password()),
        Err(CertsError::KeyMismatch)
    ));
    // Missing a block; no header.
    let short = dir.path().join("short");
    std::fs::write(&short, format!("{header}{}{}", ba[0], ba[1])).unwrap();
    assert!(matches!(
        Bundle::open(&short, &password()),
        Err(CertsError::Malformed { .. })
    ));
    let headless = dir.path().join("headless");
    std::fs::write(&headless, format!("{}{}{}", ba[0], ba[1], ba[2])).unwrap();
    assert!(matches!(
        Bundle::open(&headless, &password()),
        Err(CertsError::Malformed { .. })
    ));
    match Bundle::open(&dir.path().join("missing"), &password()) {
        Err(CertsError::NotFound { path }) => assert!(path.ends_with("missing")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_enrollment_needs_the_matching_key() {
    let ca = ca("D", 1);
    let e = enroll(&ca, DeviceRole::Hub, "h", 7);
    assert!(matches!(
        Enrollment::new(ca.cert().clone(), e.cert_der.clone(), key(8)),
        Err(CertsError::KeyMismatch)
    ));
    assert!(Enrollment::new(ca.cert().clone(), e.cert_der, key(7)).is_ok());
}
