use sentinel_certs::{
    verify_identity, Ca, CaCert, CertError, CertsError, DeviceRole, Password, CA_CERT_FILE,
    CA_KEY_FILE,
};

use crate::common::{ca, key, DAY, T0};

fn password() -> Password {
    Password::new("correct horse battery staple").unwrap()
}

#[test]
fn ca_create_save_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca");
    let original = ca("Deployment North", 1);
    assert_eq!(original.cert().name(), "Deployment North");
    assert_eq!(original.cert().key(), &key(1).verifying_key());
    assert_eq!(original.cert().not_before_ms(), T0 - 30 * DAY);
    assert_eq!(original.cert().not_after_ms(), T0 + 365 * DAY);
    original.save(&path, &password()).unwrap();

    let loaded = Ca::load(&path, &password()).unwrap();
    assert_eq!(loaded.cert(), original.cert());
    assert_eq!(
        CaCert::load(&path.join(CA_CERT_FILE)).unwrap(),
        *original.cert()
    );
    // A loaded CA issues certificates the original CA's certificate accepts.
    let cert = loaded
        .issue(
            DeviceRole::Node,
            "n",
            &key(2).verifying_key(),
            T0,
            T0 + DAY,
            T0,
        )
        .unwrap();
    assert_eq!(
        verify_identity(cert.der(), original.cert()).unwrap(),
        *cert.identity()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(path.clone()), 0o700);
    }
    // The key file is encrypted: the raw key bytes are nowhere in it.
    let text = std::fs::read_to_string(path.join(CA_KEY_FILE)).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}

#[test]
fn wrong_password_is_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    ca("D", 1).save(dir.path(), &password()).unwrap();
    let wrong = Password::new("Correct horse battery staple").unwrap();
    assert!(matches!(
        Ca::load(dir.path(), &wrong),
        Err(CertsError::WrongPassword)
    ));
}

#[test]
fn save_never_overwrites_and_load_names_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    ca("D", 1).save(dir.path(), &password()).unwrap();
    match ca("D", 2).save(dir.path(), &password()) {
        Err(CertsError::AlreadyExists { path }) => assert!(path.starts_with(dir.path())),
        other => panic!("unexpected {other:?}"),
    }
    // The first CA is untouched.
    let loaded = Ca::load(dir.path(), &password()).unwrap();
    assert_eq!(loaded.cert().key(), &key(1).verifying_key());

    let empty = tempfile::tempdir().unwrap();
    match Ca::load(empty.path(), &password()) {
        Err(CertsError::NotFound { path }) => assert_eq!(path, empty.path().join(CA_CERT_FILE)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_key_from_another_ca_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    ca("D", 1).save(dir.path(), &password()).unwrap();
    ca("D", 2).save(other.path(), &password()).unwrap();
    std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
    std::fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).unwrap();
    assert!(matches!(
        Ca::load(dir.path(), &password()),
        Err(CertsError::KeyMismatch)
    ));
}

#[test]
fn expired_ca_refuses_to_issue() {
    let ca = ca("D", 1);
    let device = key(2).verifying_key();
    let after = ca.cert().not_after_ms() + 1;
    assert!(matches!(
        ca.issue(DeviceRole::Node, "n", &device, T0, T0 + DAY, after),
        Err(CertsError::CaExpired { now_ms, .. }) if now_ms == after
    ));
    let before = ca.cert().not_before_ms() - 1;
    assert!(matches!(
        ca.issue(DeviceRole::Node, "n", &device, T0, T0 + DAY, before),
        Err(CertsError::CaNotYetValid { .. })
    ));
}

#[test]
fn issued_validity_must_lie_inside_the_cas() {
    let ca = ca("D", 1);
    let device = key(2).verifying_key();
    let late = ca.cert().not_after_ms() + DAY;
    assert!(matches!(
        ca.issue(DeviceRole::Node, "n", &device, T0, late, T0),
        Err(CertsError::ValidityOutsideCa { .. })
    ));
    let early = ca.cert().not_before_ms() - DAY;
    assert!(matches!(
        ca.issue(DeviceRole::Node, "n", &device, early, T0, T0),
        Err(CertsError::ValidityOutsideCa { .. })
    ));
    assert!(matches!(
        ca.issue(DeviceRole::Node, "n", &device, T0 + DAY, T0, T0),
        Err(CertsError::InvalidValidity { .. })
    ));
    // Exactly the CA's bounds are fine.
    let whole = ca
        .issue(
            DeviceRole::Node,
            "n",
            &device,
            ca.cert().not_before_ms(),
            ca.cert().not_after_ms(),
            T0,
        )
        .unwrap();
    assert_eq!(whole.identity().not_after_ms, ca.cert().not_after_ms());
}

#[test]
fn bad_names_and_the_ca_key_are_refused() {
    let ca = ca("D", 1);
    let device = key(2).verifying_key();
    for name in ["", "line\nbreak", &"x".repeat(65)] {
        assert!(matches!(
            ca.issue(DeviceRole::Node, name, &device, T0, T0 + DAY, T0),
            Err(CertsError::InvalidName(_))
        ));
    }
    assert!(matches!(
        ca.issue(DeviceRole::Hub, "h", ca.cert().key(), T0, T0 + DAY, T0),
        Err(CertsError::CaKeyReused)
    ));
    assert!(matches!(
        Ca::create("", T0, T0 + DAY, key(3)),
        Err(CertsError::InvalidName(_))
    ));
    assert!(matches!(
        Ca::create("D", T0 + DAY, T0, key(3)),
        Err(CertsError::InvalidValidity { .. })
    ));
}

#[test]
fn a_device_certificate_is_not_a_ca() {
    let ca = ca("D", 1);
    let cert = ca
        .issue(
            DeviceRole::Hub,
            "h",
            &key(2).verifying_key(),
            T0,
            T0 + DAY,
            T0,
        )
        .unwrap();
    assert!(matches!(
        CaCert::from_der(cert.der()),
        Err(CertError::NotCa(_))
    ));
}
