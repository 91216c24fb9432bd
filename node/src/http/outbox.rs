//! `GET /api/v1/outbox`: entries written on this node that no hub has
//! acknowledged yet, and the last hub receipt (as `sentinel-node outbox`).

use axum::extract::State;
use axum::Json;
use sentinel_schema::access::Action;
use serde_json::{json, Value};

use super::params::{Pairs, Params};
use super::{with_node, ApiState, Caller, Problem};

pub(super) async fn outbox(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadOutbox, None)?;
    Params::from_query(query, &[])?;
    with_node(&state, |node| {
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
