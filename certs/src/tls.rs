//! rustls configurations for peer connections (QUIC via quinn, or any
//! TLS transport): TLS 1.3 only, ALPN `sentinel/1`, mutual authentication
//! against the deployment CA, no 0-RTT, no session resumption.
//!
//! Peers are addressed by IP address in the field and have no DNS names,
//! so the usual server-name check is replaced by the CA check plus the
//! peer's key identity: a peer is whoever holds the key its CA-issued
//! certificate names, and [`peer_identity`] tells the caller who that is.
//! The server name passed to rustls (or quinn's `connect`) is ignored by
//! the verifier; passing the peer's IP address is customary.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::NoServerSessionStorage;
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, PeerMisbehaved,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::ca_cert::CaCert;
use crate::enrollment::Enrollment;
use crate::error::{CertError, CertsError};
use crate::handle::RevocationHandle;
use crate::identity::{verify_identity, Identity};
use crate::revocation::RevocationList;

/// The one application protocol Sentinel speaks over TLS.
pub const ALPN: &[u8] = b"sentinel/1";

/// How old our own revocation list may be before we stop trusting peers.
///
/// The list's age is `now - issued_ms`, where `now` is the handshake time
/// (this machine's clock, as rustls passes it) and `issued_ms` the time the
/// CA stamped on the list. A list stamped in the future counts as age 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshnessPolicy {
    /// For nodes. Whatever list we hold is applied, however old. Two field
    /// nodes that have been offline for weeks must still be able to sync
    /// with each other; refusing on a stale list (as rustls'
    /// `enforce_revocation_expiration` would) would lock them out of each
    /// other exactly when they have no other link. Revocations still reach
    /// them: lists travel from peer to peer and newer ones win.
    Lenient,
    /// For hubs: refuse every peer while our list is more than this many
    /// milliseconds old, i.e. when `now - issued_ms > max_age_ms`. A hub is
    /// reachable by admins, who refresh its list (`sentinel-certs refresh`
    /// or `revoke`, then load it); until then it accepts nobody rather than
    /// someone revoked since. The empty list a device starts with is issued
    /// at 0 ms, so a hub with no list refuses everyone.
    MaxAge(u64),
}

impl FreshnessPolicy {
    /// Whether `list` is fresh enough at `now_ms` under this policy.
    pub fn check(&self, list: &RevocationList, now_ms: u64) -> Result<(), CertError> {
        match *self {
            FreshnessPolicy::Lenient => Ok(()),
            FreshnessPolicy::MaxAge(max_age_ms) => {
                if now_ms.saturating_sub(list.issued_ms) > max_age_ms {
                    Err(CertError::StaleRevocationList {
                        issued_ms: list.issued_ms,
                        now_ms,
                        max_age_ms,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Verifies peers, as server or as client, against the CA, the current
/// revocation list and the freshness policy.
#[derive(Debug)]
struct PeerVerifier {
    ca: CaCert,
    revocations: RevocationHandle,
    freshness: FreshnessPolicy,
    algorithms: WebPkiSupportedAlgorithms,
    /// The CA subject, hinted to peers so they pick the right certificate.
    hints: Vec<DistinguishedName>,
}

impl PeerVerifier {
    fn new(
        ca: &CaCert,
        revocations: &RevocationHandle,
        freshness: FreshnessPolicy,
        provider: &CryptoProvider,
    ) -> PeerVerifier {
        PeerVerifier {
            hints: vec![DistinguishedName::from(ca.subject_der().to_vec())],
            ca: ca.clone(),
            revocations: revocations.clone(),
            freshness,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// The whole verdict on a presented certificate at handshake time.
    fn check(&self, end_entity: &CertificateDer<'_>, now_ms: u64) -> Result<Identity, CertError> {
        let identity = verify_identity(end_entity, &self.ca)?;
        identity.check_valid_at(now_ms)?;
        // Read now: a list installed, or an entry revocation added, since
        // the last handshake applies to this one. Freshness is the CA
        // list's alone; the revocation is the stricter of list and entries.
        self.freshness.check(&self.revocations.current(), now_ms)?;
        if let Some(r) = self.revocations.revocation_of(&identity.author) {
            return Err(CertError::Revoked {
                author: identity.author,
                last_valid_seq: r.last_valid_seq,
            });
        }
        Ok(identity)
    }

    fn verify(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        let now_ms = now.as_secs().saturating_mul(1000);
        self.check(end_entity, now_ms)
            .map(|_| ())
            .map_err(|e| refusal(e, now))
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Identity keys are ed25519; any other scheme is a peer ignoring
        // what we advertised.
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// Maps a refusal to the rustls error whose TLS alert tells the peer what
/// went wrong (certificate_expired, certificate_revoked, unknown_ca, ...).
fn refusal(err: CertError, now: UnixTime) -> rustls::Error {
    let at = |ms: u64| UnixTime::since_unix_epoch(Duration::from_millis(ms));
    let e = match err {
        CertError::Expired { not_after_ms, .. } => CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after_ms),
        },
        CertError::NotYetValid { not_before_ms, .. } => CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before_ms),
        },
        CertError::Revoked { .. } => CertificateError::Revoked,
        CertError::WrongIssuer | CertError::BadSignature => CertificateError::UnknownIssuer,
        CertError::StaleRevocationList {
            issued_ms,
            max_age_ms,
            ..
        } => CertificateError::ExpiredRevocationListContext {
            time: now,
            next_update: at(issued_ms.saturating_add(max_age_ms)),
        },
        CertError::Malformed(_) | CertError::TrailingBytes => CertificateError::BadEncoding,
        CertError::UnknownCriticalExtension(_) => CertificateError::UnhandledCriticalExtension,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(e)
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        // Device certificates are issued directly by the CA; anything sent
        // alongside is ignored, never trusted.
        _intermediates: &[CertificateDer<'_>],
        // Peers have no names: see the module documentation.
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, now)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the configurations only enable TLS 1.3.
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        Some(&self.hints)
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(end_entity, now)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn private_key(key: &SigningKey) -> Result<PrivateKeyDer<'static>, CertsError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| CertsError::Encoding(format!("PKCS#8: {e}")))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        der.as_bytes().to_vec(),
    )))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of a peer connection, reading the handshake time from
/// the system clock.
pub fn server_config(
    enrollment: &Enrollment,
    revocations: &RevocationHandle,
    freshness: FreshnessPolicy,
) -> Result<Arc<ServerConfig>, CertsError> {
    server_config_with_time(
        enrollment,
        revocations,
        freshness,
        Arc::new(DefaultTimeProvider),
    )
}

/// [`server_config`] with the handshake time taken from `time`, for
/// simulations and tests on virtual time.
pub fn server_config_with_time(
    enrollment: &Enrollment,
    revocations: &RevocationHandle,
    freshness: FreshnessPolicy,
    time: Arc<dyn TimeProvider>,
) -> Result<Arc<ServerConfig>, CertsError> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(
        &enrollment.ca,
        revocations,
        freshness,
        &provider,
    ));
    let mut config = ServerConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(enrollment.cert_der.clone())],
            private_key(&enrollment.key)?,
        )?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT: early data can be replayed and is sent before the client is
    // authenticated.
    config.max_early_data_size = 0;
    // No resumption: a resumed session skips certificate verification, so
    // a peer revoked (or expired) since its first handshake could get back
    // in. Full handshakes are cheap next to a sync session.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// The client side of a peer connection, reading the handshake time from
/// the system clock.
pub fn client_config(
    enrollment: &Enrollment,
    revocations: &RevocationHandle,
    freshness: FreshnessPolicy,
) -> Result<Arc<ClientConfig>, CertsError> {
    client_config_with_time(
        enrollment,
        revocations,
        freshness,
        Arc::new(DefaultTimeProvider),
    )
}

/// [`client_config`] with the handshake time taken from `time`, for
/// simulations and tests on virtual time.
pub fn client_config_with_time(
    enrollment: &Enrollment,
    revocations: &RevocationHandle,
    freshness: FreshnessPolicy,
    time: Arc<dyn TimeProvider>,
) -> Result<Arc<ClientConfig>, CertsError> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(
        &enrollment.ca,
        revocations,
        freshness,
        &provider,
    ));
    let mut config = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![CertificateDer::from(enrollment.cert_der.clone())],
            private_key(&enrollment.key)?,
        )?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_early_data = false;
    config.resumption = Resumption::disabled();
    // Peers have no names to indicate.
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// The identity of the peer of a finished handshake, from the certificates
/// it presented (for quinn: `connection.peer_identity()` downcast to
/// `Vec<CertificateDer<'static>>`).
///
/// Verifies the certificate against `ca` again rather than trusting that
/// the connection was made with one of our configurations: one signature
/// check per connection buys independence from how it was set up.
pub fn peer_identity(certs: &[CertificateDer<'_>], ca: &CaCert) -> Result<Identity, CertError> {
    let first = certs.first().ok_or(CertError::NoCertificate)?;
    verify_identity(first, ca)
}
