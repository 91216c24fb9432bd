//! `GET /api/v1/nodes`: every peer the sync server has seen, with how far
//! behind the hub it likely is. See the module docs of [`super`].

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{params, Pairs, Problem};
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};

/// `GET /api/v1/nodes`.
#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    tag = "nodes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every peer the sync server has seen.",
            body = super::openapi::NodeList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn nodes(
    State(super::ApiState { store, .. }): State<super::ApiState>,
    caller: super::Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(sentinel_schema::access::Action::ReadNodes, None)?;
    params(query, &[])?;
    let client = store.client().await?;
    let rows = client
        .query(
            "SELECT p.author, p.name, p.role, p.last_seen_ms, p.last_addr, p.sessions,
                 p.last_close, coalesce(h.seq, 0),
                 greatest(t.n - p.hub_entries_at_last_seen, 0)
             FROM peers p
             LEFT JOIN heads h ON h.author = p.author
             CROSS JOIN (SELECT count(*) AS n FROM entries) t
             ORDER BY p.last_seen_ms DESC, p.author",
            &[],
        )
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "author": hex::encode(r.get::<_, Vec<u8>>(0)),
                "name": r.get::<_, String>(1),
                "role": r.get::<_, String>(2),
                "last_seen_ms": r.get::<_, i64>(3),
                "last_addr": r.get::<_, String>(4),
                "sessions": r.get::<_, i64>(5),
                "last_close": r.get::<_, String>(6),
                "hub_seq": r.get::<_, i64>(7),
                "entries_behind": r.get::<_, i64>(8),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
