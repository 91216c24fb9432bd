//! What the node's and the hub's HTTP APIs share, so both answer the same
//! way: errors as `application/problem+json` ([`problem`]), strict JSON
//! bodies ([`body`]), bearer tokens and argon2id password hashes
//! ([`people`]), and the shared parts of their OpenAPI documents
//! ([`openapi`]: the `Problem` schema, error answers, the bearer scheme).
//! Who may do what is `sentinel_schema::access`.
//!
//! The formats events are exported in, CSV and KML, are written once in
//! [`formats`], for the servers' export routes and the node's command
//! line alike.
//!
//! Above all it holds the routes both servers serve ([`api`]): one handler
//! each, over the [`api::Backend`] a server plugs its store into, so the
//! node's and the hub's APIs cannot drift apart.
//!
//! Its `testing` feature ([`testing`]) holds what the servers' tests of
//! that contract share: in-process calls, the OpenAPI document checked
//! against the live router, the feed read over a socket, the fuzz
//! fixtures' common part.
//!
//! Never does: storage (each server keeps its accounts, tokens and views
//! in its own store), or know whether it runs in a node or a hub.

#![forbid(unsafe_code)]

pub mod api;
pub mod body;
pub mod clock;
pub mod formats;
pub mod limit;
pub mod llm;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod people;
pub mod problem;
pub mod proxy;
pub mod sensor;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;

use axum::http::{header, HeaderMap};

pub use problem::{Problem, PROBLEM_JSON};

/// The token of an `Authorization: Bearer TOKEN` header; 401 when it is
/// missing or malformed.
pub fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("sign in: send Authorization: Bearer TOKEN"))?;
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(Problem::unauthorized(
            "the Authorization header must be: Bearer TOKEN",
        )),
    }
}
