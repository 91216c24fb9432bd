use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType, PKCS_ED25519};
use rustls_pki_types::CertificateDer;
use sentinel_certs::{peer_identity, verify_identity, AuthorId, CertError, DeviceRole};

use crate::common::{ca, key, DAY, T0};

#[test]
fn each_role_is_issued_and_verified() {
    let ca = ca("D", 1);
    for (i, role) in DeviceRole::ALL.into_iter().enumerate() {
        let device = key(10 + i as u8);
        let name = format!("{role}-{i}");
        // Validity is stored in whole seconds, rounded inwards.
        let cert = ca
            .issue(
                role,
                &name,
                &device.verifying_key(),
                T0 + 1,
                T0 + DAY + 999,
                T0,
            )
            .unwrap();
        let id = verify_identity(cert.der(), ca.cert()).unwrap();
        assert_eq!(id, *cert.identity());
        assert_eq!(id.author, AuthorId(device.verifying_key().to_bytes()));
        assert_eq!(id.author, sentinel_schema::author_of(&device));
        assert_eq!(id.role, role);
        assert_eq!(id.name, name);
        assert_eq!(id.not_before_ms, T0 + 1000);
        assert_eq!(id.not_after_ms, T0 + DAY);
        let der = CertificateDer::from(cert.der().to_vec());
        assert_eq!(peer_identity(&[der], ca.cert()).unwrap(), id);
    }
}

#[test]
fn validity_is_judged_by_the_caller() {
    let ca = ca("D", 1);
    let cert = ca
        .issue(
            DeviceRole::Node,
            "n",
            &key(2).verifying_key(),
            T0,
            T0 + DAY,
            T0,
        )
        .unwrap();
    // verify_identity reads no clock: an expired certificate still parses,
    // so entries written while it was valid can be judged at their time.
    let id = verify_identity(cert.der(), ca.cert()).unwrap();
    assert!(!id.valid_at(T0 - 1), "not yet valid");
    assert!(id.valid_at(T0));
    assert!(id.valid_at(T0 + DAY));
    assert!(!id.valid_at(T0 + DAY + 1), "expired");
    assert!(matches!(
        id.check_valid_at(T0 + 2 * DAY),
        Err(CertError::Expired { .. })
    ));
    assert!(matches!(
        id.check_valid_at(T0 - DAY),
        Err(CertError::NotYetValid { .. })
    ));
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ours = ca("D", 1);
    let theirs = ca("Elsewhere", 2);
    let same_name = ca("D", 3);
    let device = key(4).verifying_key();
    let foreign = theirs
        .issue(DeviceRole::Node, "n", &device, T0, T0 + DAY, T0)
        .unwrap();
    assert_eq!(
        verify_identity(foreign.der(), ours.cert()),
        Err(CertError::WrongIssuer)
    );
    // Another CA with the same name: the names match, the signature does not.
    let impostor = same_name
        .issue(DeviceRole::Node, "n", &device, T0, T0 + DAY, T0)
        .unwrap();
    assert_eq!(
        verify_identity(impostor.der(), ours.cert()),
        Err(CertError::BadSignature)
    );
}

fn self_signed_leaf(cn: &str, role_uri: &str) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI(role_uri.try_into().unwrap())];
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn a_self_signed_leaf_is_refused() {
    let ca = ca("D", 1);
    // Its own name as issuer: not from our CA.
    assert_eq!(
        verify_identity(&self_signed_leaf("rogue", "sentinel:role:hub"), ca.cert()),
        Err(CertError::WrongIssuer)
    );
    // Claiming our CA's name as its own: the signature gives it away.
    assert_eq!(
        verify_identity(&self_signed_leaf("D", "sentinel:role:hub"), ca.cert()),
        Err(CertError::BadSignature)
    );
}

#[test]
fn the_ca_certificate_is_not_a_device() {
    let ca = ca("D", 1);
    assert_eq!(
        verify_identity(ca.cert().der(), ca.cert()),
        Err(CertError::IsCa)
    );
}

#[test]
fn every_tampered_byte_is_refused() {
    let ca = ca("D", 1);
    let cert = ca
        .issue(
            DeviceRole::Sensor,
            "s",
            &key(2).verifying_key(),
            T0,
            T0 + DAY,
            T0,
        )
        .unwrap();
    let der = cert.der();
    for i in 0..der.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = der.to_vec();
            bad[i] ^= bit;
            assert!(
                verify_identity(&bad, ca.cert()).is_err(),
                "flipping bit {bit:#x} of byte {i} was accepted"
            );
        }
    }
    let mut longer = der.to_vec();
    longer.push(0);
    assert_eq!(
        verify_identity(&longer, ca.cert()),
        Err(CertError::TrailingBytes)
    );
    assert!(matches!(
        verify_identity(&der[..der.len() - 1], ca.cert()),
        Err(CertError::Malformed(_))
    ));
    assert!(matches!(
        verify_identity(b"not a certificate", ca.cert()),
        Err(CertError::Malformed(_))
    ));
    assert_eq!(peer_identity(&[], ca.cert()), Err(CertError::NoCertificate));
}

/// Signs a leaf with the test CA's key (seed 1, name "D") from arbitrary
/// parameters, to build certificates our CA would never issue.
fn signed_by_test_ca(mut params: CertificateParams) -> Vec<u8> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use rcgen::{BasicConstraints, IsCa, Issuer, KeyUsagePurpose};
    let ca_der = key(1).to_pkcs8_der().unwrap();
    let ca_key =
        KeyPair::from_pkcs8_der_and_sign_algo(&ca_der.as_bytes().into(), &PKCS_ED25519).unwrap();
    let mut ca_params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "D");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_der = key(5).to_pkcs8_der().unwrap();
    let leaf =
        KeyPair::from_pkcs8_der_and_sign_algo(&leaf_der.as_bytes().into(), &PKCS_ED25519).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "leaf");
    params.distinguished_name = dn;
    params.signed_by(&leaf, &issuer).unwrap().der().to_vec()
}

fn with_uris(uris: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI((*u).try_into().unwrap()))
        .collect();
    params
}

#[test]
fn the_role_must_be_exactly_one_known_role() {
    let ca = ca("D", 1);
    // The helper really does sign like our CA: a proper role passes.
    let good = signed_by_test_ca(with_uris(&[
        "sentinel:role:node",
        "https://example.invalid",
    ]));
    assert_eq!(
        verify_identity(&good, ca.cert()).unwrap().role,
        DeviceRole::Node
    );
    assert_eq!(
        verify_identity(&signed_by_test_ca(with_uris(&[])), ca.cert()),
        Err(CertError::MissingRole)
    );
    assert_eq!(
        verify_identity(
            &signed_by_test_ca(with_uris(&["https://example.invalid"])),
            ca.cert()
        ),
        Err(CertError::MissingRole)
    );
    assert_eq!(
        verify_identity(
            &signed_by_test_ca(with_uris(&["sentinel:role:node", "sentinel:role:hub"])),
            ca.cert()
        ),
        Err(CertError::MultipleRoles)
    );
    assert_eq!(
        verify_identity(
            &signed_by_test_ca(with_uris(&["sentinel:role:admin"])),
            ca.cert()
        ),
        Err(CertError::UnknownRole("admin".to_string()))
    );
}

#[test]
fn unknown_critical_extensions_and_ca_leaves_are_refused() {
    use rcgen::{BasicConstraints, CustomExtension, IsCa, KeyUsagePurpose};
    let ca = ca("D", 1);
    let mut params = with_uris(&["sentinel:role:hub"]);
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
    ext.set_criticality(true);
    params.custom_extensions = vec![ext];
    assert_eq!(
        verify_identity(&signed_by_test_ca(params), ca.cert()),
        Err(CertError::UnknownCriticalExtension(
            "1.3.6.1.4.1.99999.1".to_string()
        ))
    );

    let mut params = with_uris(&["sentinel:role:hub"]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    assert_eq!(
        verify_identity(&signed_by_test_ca(params), ca.cert()),
        Err(CertError::IsCa)
    );

    let mut params = with_uris(&["sentinel:role:hub"]);
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    assert_eq!(
        verify_identity(&signed_by_test_ca(params), ca.cert()),
        Err(CertError::NoDigitalSignature)
    );
}
