//! The deployment CA as the session's [`TrustAnchor`]: certificates and
//! revocation lists checked with `sentinel-certs`.

use sentinel_certs::{verify_identity, CaCert, RevocationList};

use crate::trust::{AuthorInfo, Revocations, TrustAnchor};

/// Trusts what the deployment CA signed.
#[derive(Debug, Clone)]
pub struct CaTrust {
    ca: CaCert,
}

impl CaTrust {
    pub fn new(ca: CaCert) -> Self {
        CaTrust { ca }
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
        Ok(Revocations {
            number: list.number,
            revoked: list
                .revoked
                .iter()
                .map(|r| (r.key, r.last_valid_seq))
                .collect(),
        })
    }
}
