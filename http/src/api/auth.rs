//! Signing in and out, and one's own password: `POST /api/v1/login` with
//! `{"name", "password"}` answers a bearer token valid
//! [`TOKEN_LIFETIME_MS`]; `POST /api/v1/logout` revokes the token
//! presented; `POST /api/v1/password` with `{"current_password",
//! "new_password"}` changes the caller's password and revokes every other
//! token of the account. Answers that carry a token say
//! `Cache-Control: no-store`.
//!
//! **Guessing.** A login with an unknown name costs the same argon2id
//! check as a wrong password, so names cannot be probed. Each wrong
//! password (at login, or as the current password) is counted in the
//! store, and after [`crate::people::FREE_FAILURES`] in a row the account
//! is locked for [`crate::people::lockout_ms`], doubling with each further
//! failure: while it is locked every login is refused — the right password
//! too — with the very answer of a wrong password, after the same work,
//! and not counted again. A success forgets the failures. The login route
//! also has a stricter per-client rate limit (`crate::limit`).
//!
//! Hashing runs on blocking threads, at most [`MAX_CONCURRENT_HASHES`] at
//! a time, never on the async workers.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_schema::access::role_name;
use tokio::sync::Semaphore;

use super::json::{Session, Whoami};
use super::{Api, Caller};
use crate::body::{json_object, text};
use crate::openapi::{JsonBodyRefusals, Login, PasswordChange, Unauthorized, Unavailable};
use crate::people::{
    check_name, check_password, dummy_hash, hash_password, new_token, verify_password,
    TOKEN_LIFETIME_MS,
};
use crate::Problem;

/// Password checks running at once; more wait their turn.
pub const MAX_CONCURRENT_HASHES: usize = 2;

fn hashing() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(MAX_CONCURRENT_HASHES))
}

/// Whether `password` matches `hash`, checked on a blocking thread under
/// the hashing bound.
pub async fn password_matches(hash: String, password: String) -> Result<bool, Problem> {
    let _permit = hashing()
        .acquire()
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| Problem::unavailable(&e))
}

/// A new password's hash, made on a blocking thread under the hashing
/// bound; `400` naming `field` when the password breaks the rules.
pub async fn hashed(password: &str, field: &str) -> Result<String, Problem> {
    check_password(password).map_err(|e| Problem::bad_field(field, e.to_string()))?;
    let _permit = hashing()
        .acquire()
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Problem::unavailable(&e))?
        .map_err(|e| Problem::bad_field(field, e.to_string()))
}

/// `response` with `Cache-Control: no-store` (and the HTTP/1.0 `Pragma`):
/// an answer carrying a token or about a password is kept by no cache.
pub fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The one answer to every refused login.
fn refused() -> Problem {
    Problem::unauthorized("unknown name, wrong password, or a disabled account")
}

/// Whether `password` is the password of the account `record` describes,
/// at `now_ms`: a locked account matches nothing (after the same work as a
/// check), and a wrong password counts against the account.
async fn check(
    api: &Api,
    name: &str,
    record: super::PasswordRecord,
    password: &str,
    now_ms: u64,
) -> Result<bool, Problem> {
    if record.locked_until_ms > now_ms {
        password_matches(dummy_hash().to_owned(), password.to_owned()).await?;
        return Ok(false);
    }
    if !password_matches(record.hash, password.to_owned()).await? {
        api.backend.login_failed(name, now_ms).await?;
        return Ok(false);
    }
    if record.failures > 0 {
        api.backend.login_succeeded(name).await?;
    }
    Ok(true)
}

/// `POST /api/v1/login`.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "accounts",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in. The answer says Cache-Control: no-store.",
            body = Session),
        JsonBodyRefusals, Unauthorized, Unavailable,
    )
)]
pub async fn login(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let map = json_object(&headers, body, &["name", "password"]).await?;
    let name = text(&map, "name")?;
    let password = text(&map, "password")?;
    // A name no account can have is not looked up (a store may not even
    // hold it: PostgreSQL text cannot hold NUL).
    let record = if check_name(name).is_ok() {
        api.backend.password(name).await?
    } else {
        None
    };
    let Some(record) = record else {
        // Spend the same time as a real check, so names cannot be probed.
        password_matches(dummy_hash().to_owned(), password.to_owned()).await?;
        return Err(refused());
    };
    let now = api.backend.clock().now_ms();
    let disabled = record.disabled;
    if !check(&api, name, record, password, now).await? || disabled {
        return Err(refused());
    }
    let (token, digest) = new_token();
    let expires_ms = now + TOKEN_LIFETIME_MS;
    let role = api
        .backend
        .open_session(digest, name, now, expires_ms)
        .await?;
    Ok(no_store(Json(Session {
        token,
        expires_ms,
        name: name.to_owned(),
        role: role_name(role).to_owned(),
    })))
}

/// `GET /api/v1/session`: who the token presented signs in, and their
/// role now (the web pages ask this when they open).
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's name and current role.", body = Whoami),
        Unauthorized, Unavailable,
    )
)]
pub async fn session(caller: Caller) -> Json<Whoami> {
    Json(Whoami {
        role: role_name(caller.role).to_owned(),
        name: caller.name,
    })
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
pub async fn logout(State(api): State<Api>, caller: Caller) -> Result<Response, Problem> {
    api.backend.close_session(caller.token()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/password`: the caller's own password, the current one
/// required.
#[utoipa::path(
    post,
    path = "/api/v1/password",
    tag = "accounts",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The password is changed; every other token of the \
            account is revoked (this one stays valid)."),
        JsonBodyRefusals, Unauthorized, Unavailable,
    )
)]
pub async fn change_password(
    State(api): State<Api>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let map = json_object(&headers, body, &["current_password", "new_password"]).await?;
    let current = text(&map, "current_password")?;
    let new = text(&map, "new_password")?;
    check_password(new).map_err(|e| Problem::bad_field("new_password", e.to_string()))?;
    let wrong = || {
        Problem::bad_field(
            "current_password",
            "is not this account's password (or the account is locked for a while)",
        )
    };
    let Some(record) = api.backend.password(&caller.name).await? else {
        return Err(Problem::unauthorized("this account is gone: sign in again"));
    };
    let now = api.backend.clock().now_ms();
    if !check(&api, &caller.name, record, current, now).await? {
        return Err(wrong());
    }
    let hash = hashed(new, "new_password").await?;
    if !api
        .backend
        .set_password(&caller.name, hash, caller.token())
        .await?
    {
        return Err(Problem::unauthorized("this account is gone: sign in again"));
    }
    Ok(no_store(StatusCode::NO_CONTENT))
}
