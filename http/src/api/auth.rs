//! Signing in and out: `POST /api/v1/login` with `{"name", "password"}`
//! answers a bearer token valid [`TOKEN_LIFETIME_MS`]; `POST
//! /api/v1/logout` revokes the token presented.
//!
//! A login with an unknown name costs the same argon2id check as a wrong
//! password, so names cannot be probed. Hashing runs on blocking threads,
//! at most [`MAX_CONCURRENT_HASHES`] at a time, never on the async
//! workers.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_schema::access::role_name;
use tokio::sync::Semaphore;

use super::json::Session;
use super::{Api, Caller};
use crate::body::{json_object, text};
use crate::openapi::{JsonBodyRefusals, Login, Unauthorized, Unavailable};
use crate::people::{check_name, dummy_hash, new_token, verify_password, TOKEN_LIFETIME_MS};
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
pub async fn login(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Session>, Problem> {
    let map = json_object(&headers, body, &["name", "password"]).await?;
    let name = text(&map, "name")?;
    let password = text(&map, "password")?;
    let refused = || Problem::unauthorized("unknown name, wrong password, or a disabled account");
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
    if !password_matches(record.hash, password.to_owned()).await? || record.disabled {
        return Err(refused());
    }
    let (token, digest) = new_token();
    let now = api.backend.clock().now_ms();
    let expires_ms = now + TOKEN_LIFETIME_MS;
    let role = api
        .backend
        .open_session(digest, name, now, expires_ms)
        .await?;
    Ok(Json(Session {
        token,
        expires_ms,
        name: name.to_owned(),
        role: role_name(role).to_owned(),
    }))
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
