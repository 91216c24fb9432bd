//! The deployment CA as the session's [`TrustAnchor`]: certificates and
//! revocation lists checked with `sentinel-certs`, and the entry
//! revocations of a shared [`RevocationHandle`].

use sentinel_certs::{verify_identity, CaCert, RevocationHandle, RevocationList};
use sentinel_schema::AuthorId;

use crate::trust::{AuthorInfo, Revocations, TrustAnchor};

/// What a verified CA list revokes, as the session checks it: each
/// author's last valid seq. (Sensor pushes on node and hub check against
/// the list their handle holds, through this too.)
impl From<&RevocationList> for Revocations {
    fn from(list: &RevocationList) -> Revocations {
        Revocations {
            number: list.number,
            revoked: list
                .revoked
                .iter()
                .map(|r| (r.key, r.last_valid_seq))
                .collect(),
        }
    }
}

/// Trusts what the deployment CA signed.
#[derive(Debug, Clone)]
pub struct CaTrust {
    ca: CaCert,
    /// Where hub-signed revocation entries are held (the handle the TLS
    /// verifiers share); `None`: only the CA list applies.
    revocations: Option<RevocationHandle>,
}

impl CaTrust {
    pub fn new(ca: CaCert) -> Self {
        CaTrust {
            ca,
            revocations: None,
        }
    }

    /// Also applies the entry revocations `revocations` holds, as they are
    /// at each entry checked ([`TrustAnchor::entry_revocation`]).
    pub fn with_revocations(ca: CaCert, revocations: RevocationHandle) -> Self {
        CaTrust {
            ca,
            revocations: Some(revocations),
        }
    }

    pub fn ca(&self) -> &CaCert {
        &self.ca
    }
}

impl TrustAnchor for CaTrust {
    fn verify_certificate(&self, der: &[u8]) -> Result<AuthorInfo, String> {
        let id = verify_identity(der, &self.ca).map_err(|e| e.to_string())?;
        Ok(AuthorInfo {
            author: id.author,
            role: id.role,
            not_before_ms: id.not_before_ms,
            not_after_ms: id.not_after_ms,
        })
    }

    fn verify_revocation_list(&self, bytes: &[u8]) -> Result<Revocations, String> {
        let list = RevocationList::verify(bytes, &self.ca).map_err(|e| e.to_string())?;
        Ok(Revocations::from(&list))
    }

    fn entry_revocation(&self, author: &AuthorId) -> Option<u64> {
        self.revocations.as_ref()?.entry_revocation(author)
    }
}
