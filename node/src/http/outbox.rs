//! `GET /api/v1/outbox`: entries written on this node that no hub has
//! acknowledged yet, and the last hub receipt (as `sentinel-node outbox`).
//!
//! Never does: change the outbox (only a hub's receipt does, by sync).

use axum::extract::State;
use axum::Json;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use serde_json::{json, Value};

use super::schemas::Outbox;
use super::state::ApiState;

#[utoipa::path(
    get,
    path = "/api/v1/outbox",
    tag = "sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "This node's entries awaiting a hub's receipt, oldest \
            first, and the newest receipt.", body = Outbox),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn outbox(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadOutbox, None)?;
    Params::from_query(query, &[])?;
    state
        .with_node(|node| {
            let store = node.store();
            let entries = store.outbox()?;
            Ok(Json(json!({
                "author": node.author().to_hex(),
                "awaiting_receipt": entries.len(),
                "entries": entries,
                "last_receipt": store.last_receipt()?,
            })))
        })
        .await
}
