//! Signing in, and who the caller is.
//!
//! `POST /api/v1/login` with `{"name", "password"}` answers a bearer token
//! valid [`TOKEN_LIFETIME_MS`]; every other route wants `Authorization:
//! Bearer TOKEN`. The token, the account and the person's role are looked
//! up on every request, so a logout, a disabled account or a new role
//! grant (arrived by sync) takes effect on the next request.
//!
//! Roles are `role_grant` entries in the node's log, counted only when
//! their author's stored certificate verifies under the deployment CA as
//! a hub's (sync admits only those; this check keeps it so whatever
//! reached the log). A node that is not enrolled knows no CA, so nobody
//! has a role there.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_certs::CaCert;
use sentinel_http::bearer;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{JsonBodyRefusals, Login, Session, Unauthorized, Unavailable};
use sentinel_http::people::{
    dummy_hash, new_token, token_hash, verify_password, TOKEN_LIFETIME_MS,
};
use sentinel_schema::access::{check, role_name, Action, EventFacts, Scope};
use sentinel_schema::{DeviceRole, PersonRole};
use sentinel_sync::SyncStore;
use serde_json::{json, Value};

use super::{now_ms, with_node, ApiState, Problem};
use crate::node::{Node, NodeError};

/// The signed-in person making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: PersonRole,
    /// The digest of the token presented (for logout).
    token: [u8; 32],
}

impl Caller {
    /// The matrix's verdict for this caller; 403 when refused.
    pub fn may(&self, action: Action, event: Option<EventFacts<'_>>) -> Result<Scope, Problem> {
        check(&self.name, self.role, action, event).map_err(|d| Problem::forbidden(d.to_string()))
    }
}

/// Every person's role on this node: the newest grant by a hub whose
/// certificate the node holds and `ca` verifies.
pub fn roles(node: &Node, ca: Option<&CaCert>) -> Result<BTreeMap<String, PersonRole>, NodeError> {
    let Some(ca) = ca else {
        return Ok(BTreeMap::new());
    };
    let store = node.store();
    let mut hubs = BTreeSet::new();
    for author in store.role_grant_authors()? {
        let Some(der) = store.certificate(&author)? else {
            continue;
        };
        match sentinel_certs::verify_identity(&der, ca) {
            Ok(id) if id.role == DeviceRole::Hub && id.author == author => {
                hubs.insert(author);
            }
            _ => {}
        }
    }
    Ok(store.roles(|a| hubs.contains(a))?)
}

/// One person's role ([`PersonRole::None`] without a grant).
pub fn role_of(node: &Node, ca: Option<&CaCert>, person: &str) -> Result<PersonRole, NodeError> {
    Ok(roles(node, ca)?
        .get(person)
        .copied()
        .unwrap_or(PersonRole::None))
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        signed_in(state, token_hash(bearer(&parts.headers)?)).await
    }
}

/// Who the token with this digest signs in, and their role now; 401 when
/// it is unknown, expired or revoked.
async fn signed_in(state: &ApiState, token: [u8; 32]) -> Result<Caller, Problem> {
    let ca = state.ca.clone();
    with_node(state, move |node| {
        let name = node
            .store()
            .token_account(&token, now_ms())?
            .ok_or_else(|| {
                Problem::unauthorized("the token is unknown, expired or revoked: sign in again")
            })?;
        let role = role_of(node, ca.as_deref(), &name)?;
        Ok(Caller { name, role, token })
    })
    .await
}

impl Caller {
    /// The same token checked again, for long-lived requests (the feed):
    /// 401 once it expired or was revoked; the role as it is now.
    pub(super) async fn again(&self, state: &ApiState) -> Result<Caller, Problem> {
        signed_in(state, self.token).await
    }
}

/// `POST /api/v1/login`.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "accounts",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in.", body = Session),
        JsonBodyRefusals, Unauthorized, Unavailable,
    )
)]
pub(super) async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let map = json_object(&headers, body, &["name", "password"]).await?;
    let name = text(&map, "name")?.to_owned();
    let password = text(&map, "password")?.to_owned();
    let refused = || Problem::unauthorized("unknown name, wrong password, or a disabled account");
    let secret = {
        let name = name.clone();
        with_node(&state, move |node| {
            Ok(node.store().account_secret(&name)?)
        })
        .await?
    };
    // Hash outside the node's lock: argon2id takes a while on purpose.
    let ok = tokio::task::spawn_blocking(move || match secret {
        Some((hash, disabled)) => verify_password(&hash, &password) && !disabled,
        None => {
            // Spend the same time as a real check, so names cannot be probed.
            let _ = verify_password(dummy_hash(), &password);
            false
        }
    })
    .await
    .map_err(|e| Problem::unavailable(&e))?;
    if !ok {
        return Err(refused());
    }
    let (token, digest) = new_token();
    let ca = state.ca.clone();
    let (expires_ms, role) = with_node(&state, move |node| {
        let now = now_ms();
        let expires_ms = now + TOKEN_LIFETIME_MS;
        node.store().insert_token(&digest, &name, now, expires_ms)?;
        Ok((expires_ms, role_of(node, ca.as_deref(), &name)?))
    })
    .await?;
    Ok(Json(json!({
        "token": token,
        "expires_ms": expires_ms,
        "name": text(&map, "name")?,
        "role": role_name(role),
    })))
}

/// `POST /api/v1/logout`: revokes the token presented.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked."),
        Unauthorized, Unavailable,
    )
)]
pub(super) async fn logout(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Response, Problem> {
    let token = caller.token;
    with_node(&state, move |node| Ok(node.store().revoke_token(&token)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
