//! Accounts (admins only): `GET /api/v1/users`, `POST /api/v1/users`
//! (`{"name", "password", "role"}`), `POST /api/v1/users/{name}/role`
//! (`{"role"}`), `POST /api/v1/users/{name}/disable`,
//! `POST /api/v1/users/{name}/enable` (its failed logins forgotten too),
//! `POST /api/v1/users/{name}/password` (`{"password"}`: a reset, which
//! revokes every token of the account and lifts a lockout). People change
//! their own password with the shared `POST /api/v1/password`.
//!
//! An account is a row of the hub's store (an argon2id hash, never the
//! password); its role is a `role_grant` entry the hub signs with the
//! admin as actor, so roles replicate and are read from the log on every
//! request. Signing in and out are the shared routes
//! (`sentinel_http::api::auth`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::api::auth::{hashed, no_store};
use sentinel_http::api::Caller;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{
    role_schema, Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::people::check_name;
use sentinel_http::Problem;
use sentinel_schema::access::{parse_role, role_name, Action};
use sentinel_schema::PersonRole;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::state::ApiState;
use crate::people::grant_role;

/// The account name the document gives as an example (`api_fixture`
/// makes it, an officer).
pub const EXAMPLE_ACCOUNT: &str = "officer-1";

/// An account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Account {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
    pub disabled: bool,
    /// When it was made, Unix ms.
    pub created_ms: u64,
}

/// Every account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<Account>,
}

/// `POST /api/v1/users`.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewAccount {
    /// 1 to 128 bytes of letters, digits and `. - _ @`.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// At least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The account made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewAccountResult {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
    pub disabled: bool,
}

/// `POST /api/v1/users/{name}/role`.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SetRole {
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The role granted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleResult {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The account disabled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Disabled {
    pub name: String,
    pub disabled: bool,
}

/// `POST /api/v1/users/{name}/password`.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PasswordReset {
    /// At least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
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
) -> Result<Json<AccountList>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let roles = state.store.roles().await?;
    let items = state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|a| {
            let role = roles.get(&a.name).copied().unwrap_or(PersonRole::None);
            Account {
                role: role_name(role).to_owned(),
                name: a.name,
                disabled: a.disabled,
                created_ms: a.created_ms,
            }
        })
        .collect();
    Ok(Json(AccountList { items }))
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
    let own = state.own_chain()?;
    let hash = hashed(password, "password").await?;
    let now = state.now_ms();
    if !state.store.create_account(name, &hash, now).await? {
        return Err(Problem::conflict("name", format!("{name:?} is taken")));
    }
    grant_role(own, name, role, &caller.name, now)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let made = NewAccountResult {
        name: name.to_owned(),
        role: role_name(role).to_owned(),
        disabled: false,
    };
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// `POST /api/v1/users/{name}/role`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/role",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(EXAMPLE_ACCOUNT))),
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
) -> Result<Json<RoleResult>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let map = json_object(&headers, body, &["role"]).await?;
    let role = role_field(&map)?;
    if !may_exist(&name) || state.store.account_secret(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    let own = state.own_chain()?;
    grant_role(own, &name, role, &caller.name, state.now_ms())
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(RoleResult {
        name,
        role: role_name(role).to_owned(),
    }))
}

/// `POST /api/v1/users/{name}/disable`: refuses its tokens from now on.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/disable",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(EXAMPLE_ACCOUNT))),
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
) -> Result<Json<Disabled>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    if !may_exist(&name) || !state.store.disable_account(&name).await? {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    Ok(Json(Disabled {
        name,
        disabled: true,
    }))
}

/// `POST /api/v1/users/{name}/enable`: takes tokens again (new ones: the
/// old stay revoked), its failed logins and lockout forgotten.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/enable",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(EXAMPLE_ACCOUNT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account is enabled.", body = Disabled),
        Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn enable_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Disabled>, Problem> {
    caller.may(Action::ManageUsers, None)?;
    if !may_exist(&name) || !state.store.enable_account(&name).await? {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    Ok(Json(Disabled {
        name,
        disabled: false,
    }))
}

/// `POST /api/v1/users/{name}/password`: a new password set by an admin;
/// every token of the account is revoked and a lockout lifted.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/password",
    tag = "accounts",
    params(("name" = String, Path, description = "An account name.",
        example = json!(EXAMPLE_ACCOUNT))),
    request_body = PasswordReset,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The password is set; every token of the account is \
            revoked."),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn reset_password(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::ManageUsers, None)?;
    let map = json_object(&headers, body, &["password"]).await?;
    let password = text(&map, "password")?;
    if !may_exist(&name) || state.store.account_secret(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    let hash = hashed(password, "password").await?;
    if !state.store.set_password(&name, &hash, None).await? {
        return Err(Problem::not_found(format!("no account {name:?}")));
    }
    Ok(no_store(StatusCode::NO_CONTENT))
}
