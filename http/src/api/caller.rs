//! Who makes a request: the bearer token, looked up on every request, so a
//! logout, a disabled account or a changed role takes effect on the next.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sentinel_schema::access::{check, Action, EventFacts, Scope};
use sentinel_schema::PersonRole;

use super::Api;
use crate::people::token_hash;
use crate::{bearer, Problem};

/// The signed-in person making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: PersonRole,
    /// The digest of the token presented (for logout and re-checks).
    token: [u8; 32],
}

impl Caller {
    /// The matrix's verdict for this caller; 403 when refused.
    pub fn may(&self, action: Action, event: Option<EventFacts<'_>>) -> Result<Scope, Problem> {
        check(&self.name, self.role, action, event).map_err(|d| Problem::forbidden(d.to_string()))
    }

    /// The digest of the token this caller presented.
    pub fn token(&self) -> [u8; 32] {
        self.token
    }

    /// Who the token with this digest signs in now; 401 when nobody.
    pub async fn signed_in(api: &Api, token: [u8; 32]) -> Result<Caller, Problem> {
        let now = api.backend.clock().now_ms();
        match api.backend.signed_in(token, now).await? {
            Some((name, role)) => Ok(Caller { name, role, token }),
            None => Err(Problem::unauthorized(
                "the token is unknown, expired or revoked: sign in again",
            )),
        }
    }

    /// The same token checked again, for long-lived requests (the feed):
    /// 401 once it expired or was revoked; the role as it is now.
    pub async fn again(&self, api: &Api) -> Result<Caller, Problem> {
        #[cfg(feature = "testing")]
        if self.token == [0; 32] {
            if let Some((name, role)) = &api.trusted {
                return Ok(Caller {
                    name: name.clone(),
                    role: *role,
                    token: self.token,
                });
            }
        }
        Caller::signed_in(api, self.token).await
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Api: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Problem> {
        let api = Api::from_ref(state);
        #[cfg(feature = "testing")]
        if let Some((name, role)) = &api.trusted {
            if !parts
                .headers
                .contains_key(axum::http::header::AUTHORIZATION)
            {
                return Ok(Caller {
                    name: name.clone(),
                    role: *role,
                    token: [0; 32],
                });
            }
        }
        Caller::signed_in(&api, token_hash(bearer(&parts.headers)?)).await
    }
}
