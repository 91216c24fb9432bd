//! Signing in, and who the caller is.
//!
//! `POST /api/v1/login` with `{"name", "password"}` answers a bearer token
//! valid [`TOKEN_LIFETIME_MS`]; every other `/api/v1` route wants
//! `Authorization: Bearer TOKEN` and checks the caller's role against the
//! matrix in `sentinel_schema::access` (`docs/security.md`). Roles are read
//! from the log on every request, so a role change, like a logout or a
//! disabled account, takes effect on the next request.
//!
//! Accounts: `GET /api/v1/users`, `POST /api/v1/users` (`{"name",
//! "password", "role"}`), `POST /api/v1/users/{name}/role` (`{"role"}`),
//! `POST /api/v1/users/{name}/disable` — admins only. A role is a
//! `role_grant` entry the hub signs with the admin as actor.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_schema::access::{check, parse_role, role_name, Action, EventFacts, Scope};
use sentinel_schema::PersonRole;
use serde_json::{json, Map, Value};

use super::openapi::{
    AccountList, Disabled, Login, NewAccount, NewAccountResult, RoleResult, Session, SetRole,
};
use super::{ApiState, Problem};
use crate::own::OwnChain;
use crate::people::grant_role;
use sentinel_http::bearer;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{
    Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::people::{
    check_name, dummy_hash, hash_password, new_token, token_hash, verify_password,
    TOKEN_LIFETIME_MS,
};

use crate::now_ms;

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

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        #[cfg(feature = "testing")]
        if let Some((name, role)) = &state.trusted {
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
        let token = token_hash(bearer(&parts.headers)?);
        let name = state
            .store
            .token_account(&token, now_ms())
            .await?
            .ok_or_else(|| {
                Problem::unauthorized("the token is unknown, expired or revoked: sign in again")
            })?;
        let role = state.store.role_of(&name).await?;
        Ok(Caller { name, role, token })
    }
}

/// Whether `name` can be an account's: PostgreSQL text cannot hold NUL, so
/// a name with one is nobody's (and asking the store would fail, a 503).
fn may_exist(name: &str) -> bool {
    !name.contains('\0')
}

fn role_field(map: &Map<String, Value>) -> Result<PersonRole, Problem> {
    let name = text(map, "role")?;
    parse_role(name).ok_or_else(|| {
        Problem::bad_field(
            "role",
            format!("{name:?}: one of admin, officer, public, none"),
        )
    })
}

pub(super) fn own_chain(state: &ApiState) -> Result<&Arc<OwnChain>, Problem> {
    state.own.as_ref().ok_or_else(|| Problem {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "urn:sentinel:problem:unavailable",
        title: "Service unavailable",
        detail: "this hub has no identity to sign role grants with".into(),
        field: None,
    })
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
    let name = text(&map, "name")?;
    let password = text(&map, "password")?;
    let refused = || Problem::unauthorized("unknown name, wrong password, or a disabled account");
    let secret = if may_exist(name) {
        state.store.account_secret(name).await?
    } else {
        None
    };
    let Some((hash, disabled)) = secret else {
        // Spend the same time as a real check, so names cannot be probed.
        let _ = verify_password(dummy_hash(), password);
        return Err(refused());
    };
    if !verify_password(&hash, password) || disabled {
        return Err(refused());
    }
    let (token, digest) = new_token();
    let now = now_ms();
    let expires_ms = now + TOKEN_LIFETIME_MS;
    state
        .store
        .insert_token(&digest, name, now, expires_ms)
        .await?;
    let role = state.store.role_of(name).await?;
    Ok(Json(json!({
        "token": token,
        "expires_ms": expires_ms,
        "name": name,
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
    state.store.revoke_token(&caller.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/users`.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every account.", body = AccountList),
        Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn users(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let roles = state.store.roles().await?;
    let items: Vec<Value> = state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|a| {
            let role = roles.get(&a.name).copied().unwrap_or(PersonRole::None);
            json!({
                "name": a.name,
                "role": role_name(role),
                "disabled": a.disabled,
                "created_ms": a.created_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/users`: an account and its role grant.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "accounts",
    request_body = NewAccount,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The account is made and its role granted.",
            body = NewAccountResult),
        JsonBodyRefusals, Unauthorized, Forbidden, Conflict, Unavailable,
    )
)]
pub(super) async fn create_user(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let map = json_object(&headers, body, &["name", "password", "role"]).await?;
    let name = text(&map, "name")?;
    check_name(name).map_err(|e| Problem::bad_field("name", e.to_string()))?;
    let password = text(&map, "password")?;
    let role = role_field(&map)?;
    let own = own_chain(&state)?;
    let hash =
        hash_password(password).map_err(|e| Problem::bad_field("password", e.to_string()))?;
    let now = now_ms();
    if !state.store.create_account(name, &hash, now).await? {
        return Err(Problem::conflict("name", format!("{name:?} is taken")));
    }
    grant_role(own, name, role, &caller.name, now)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "role": role_name(role), "disabled": false })),
    )
        .into_response())
}

/// `POST /api/v1/users/{name}/role`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/role",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(super::openapi::EXAMPLE_ACCOUNT))),
    request_body = SetRole,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role is granted.", body = RoleResult),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn set_role(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let map = json_object(&headers, body, &["role"]).await?;
    let role = role_field(&map)?;
    if !may_exist(&name) || state.store.account_secret(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    let own = own_chain(&state)?;
    grant_role(own, &name, role, &caller.name, now_ms())
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(json!({ "name": name, "role": role_name(role) })))
}

/// `POST /api/v1/users/{name}/disable`: refuses its tokens from now on.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/disable",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(super::openapi::EXAMPLE_ACCOUNT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account is disabled.", body = Disabled),
        Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn disable_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    if !may_exist(&name) || !state.store.disable_account(&name).await? {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    Ok(Json(json!({ "name": name, "disabled": true })))
}
