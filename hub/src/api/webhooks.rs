//! Webhook subscriptions and their deliveries (admins only):
//!
//! - `GET /api/v1/webhooks`, `POST /api/v1/webhooks` (`{"name", "url",
//!   "secret"?, "enabled"?, "kinds"?, "categories"?, "min_severity"?,
//!   "area"?, "status_from"?, "status_to"?}`): the list, and a new
//!   subscription. The answer to `POST` is the only one that shows the
//!   secret (given, or made by the hub: 64 hex digits);
//! - `GET`, `PATCH` (any of the same members; `null` clears a rule's
//!   member), `DELETE /api/v1/webhooks/{id}`;
//! - `GET /api/v1/webhooks/{id}/deliveries?limit=&state=`: the delivery
//!   log, newest first (state, attempts, last status and error, next
//!   attempt);
//! - `POST /api/v1/webhook-deliveries/{id}/replay`: sends a delivery again
//!   (dead-lettered or not), its attempts counted afresh.
//!
//! The rule's members are `crate::store::webhooks::Rule`'s; what the
//! deliveries carry and how they are signed, `crate::webhooks`. Every
//! refused member is a 400 naming it, and nothing is stored.
//!
//! Never does: SQL; send a delivery (the worker does); show a secret
//! after creation.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::api::auth::no_store;
use sentinel_http::api::Caller;
use sentinel_http::body::{json_object, no_body};
use sentinel_http::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::params::{hex_bytes, Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::state::ApiState;
use crate::store::webhooks::{
    Delivery, DeliveryState, Rule, Subscription, SubscriptionSpec, Written, RULE_FIELDS,
};
use crate::webhooks::{check_secret, check_url, new_id, new_secret};

/// The members a subscription's body may have.
const FIELDS: [&str; 10] = [
    "name",
    "url",
    "secret",
    "enabled",
    "kinds",
    "categories",
    "min_severity",
    "area",
    "status_from",
    "status_to",
];

/// Longest subscription name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The largest `limit` of the delivery log.
pub const MAX_LIMIT: i64 = 500;
/// The `limit` when none is given.
pub const DEFAULT_LIMIT: i64 = 100;

/// A subscription (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    /// 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub name: String,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// A disabled subscription gets no new deliveries, and its pending
    /// ones wait.
    pub enabled: bool,
    /// Entry kinds that made the change (`event_change`,
    /// `media_attached`); empty: any.
    pub kinds: Vec<String>,
    /// The event's category is one of these; empty: any.
    pub categories: Vec<String>,
    /// The event's severity is at least this.
    pub min_severity: Option<u8>,
    /// `[min_lon, min_lat, max_lon, max_lat]` the event lies in
    /// (`min_lon > max_lon` crosses the antimeridian).
    pub area: Option<Vec<f64>>,
    /// Only changes of status from this one (a new event has none).
    pub status_from: Option<String>,
    /// Only changes of status to this one.
    pub status_to: Option<String>,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms.
    pub updated_ms: u64,
}

impl From<&Subscription> for Webhook {
    fn from(s: &Subscription) -> Webhook {
        let r = &s.rule;
        Webhook {
            id: hex::encode(s.id),
            name: s.name.clone(),
            url: s.url.clone(),
            enabled: s.enabled,
            kinds: r.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
            categories: r.categories.clone(),
            min_severity: r.min_severity,
            area: r.area.map(|a| a.corners().to_vec()),
            status_from: r.status_from.map(|s| s.as_str().to_owned()),
            status_to: r.status_to.map(|s| s.as_str().to_owned()),
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
        }
    }
}

/// Every subscription, by name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// The subscription made, and its secret: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub webhook: Webhook,
    /// The HMAC key (its UTF-8 bytes) the hub signs deliveries with.
    pub secret: String,
}

/// `POST /api/v1/webhooks` (and, every member optional, `PATCH
/// /api/v1/webhooks/{id}`).
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewWebhook {
    /// 1 to 128 bytes, no control characters; unique.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// `http://` or `https://`, with a host and no credentials; at most
    /// 2048 bytes.
    #[schema(max_length = 2048)]
    pub url: String,
    /// 16 to 256 printable ASCII characters; absent: the hub makes one.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// `event_change`, `media_attached`.
    pub kinds: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 5)]
    pub min_severity: Option<u8>,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub area: Option<Vec<f64>>,
    /// `reported`, `assigned`, `in_progress`, `resolved`, `closed`.
    pub status_from: Option<String>,
    pub status_to: Option<String>,
}

/// One delivery of a subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryItem {
    /// The idempotency key (`Sentinel-Webhook-Id`), 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub subscription: String,
    /// The event, 32 hex digits.
    pub event: Option<String>,
    /// `event.created` or `event.updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: u32,
    /// When a pending delivery is due, Unix ms.
    pub next_attempt_ms: Option<u64>,
    pub created_ms: u64,
    pub last_attempt_ms: Option<u64>,
    /// The last answer's HTTP status.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_ms: Option<u64>,
}

impl From<Delivery> for DeliveryItem {
    fn from(d: Delivery) -> DeliveryItem {
        DeliveryItem {
            id: hex::encode(d.id),
            subscription: hex::encode(d.subscription),
            event: d.event.map(|e| e.to_hex()),
            kind: d.kind,
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_ms: d.next_attempt_ms,
            created_ms: d.created_ms,
            last_attempt_ms: d.last_attempt_ms,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_ms: d.delivered_ms,
        }
    }
}

/// A subscription's deliveries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryItem>,
}

/// The query of `GET /api/v1/webhooks/{id}/deliveries`. Any other
/// parameter, or one given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveriesQuery {
    /// Most items.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only deliveries in this state: `pending`, `delivered`, `dead`.
    pub state: Option<String>,
}

fn path_id(id: &str, what: &str) -> Result<[u8; 16], Problem> {
    hex_bytes::<16>(id)
        .ok_or_else(|| Problem::bad_param("id", format!("a {what} id is 32 hex digits")))
}

fn no_webhook(id: &[u8; 16]) -> Problem {
    Problem::not_found(format!("no webhook {}", hex::encode(id)))
}

fn text_field(map: &Map<String, Value>, field: &str) -> Result<Option<String>, Problem> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Problem::bad_field(field, "must be a string")),
    }
}

/// The members of `map` checked, over `old` (a `PATCH`) or nothing.
fn spec_of(
    map: &Map<String, Value>,
    old: Option<Subscription>,
) -> Result<SubscriptionSpec, Problem> {
    let name = text_field(map, "name")?;
    if let Some(n) = &name {
        if n.is_empty() || n.len() > MAX_NAME_BYTES || n.chars().any(char::is_control) {
            return Err(Problem::bad_field(
                "name",
                format!("1 to {MAX_NAME_BYTES} bytes, no control characters"),
            ));
        }
    }
    let url = text_field(map, "url")?;
    if let Some(u) = &url {
        check_url(u).map_err(|e| Problem::bad_field("url", e))?;
    }
    let secret = text_field(map, "secret")?;
    if let Some(s) = &secret {
        check_secret(s).map_err(|e| Problem::bad_field("secret", e))?;
    }
    let enabled = match map.get("enabled") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Problem::bad_field("enabled", "must be true or false")),
    };
    let mut rule = old.as_ref().map(|o| o.rule.to_json()).unwrap_or_default();
    for field in RULE_FIELDS {
        if let Some(v) = map.get(field) {
            rule.insert(field.to_owned(), v.clone());
        }
    }
    let rule = Rule::parse(&rule).map_err(|e| Problem::bad_field(e.field, e.reason))?;
    Ok(match old {
        Some(old) => SubscriptionSpec {
            name: name.unwrap_or(old.name),
            url: url.unwrap_or(old.url),
            secret: secret.unwrap_or(old.secret),
            enabled: enabled.unwrap_or(old.enabled),
            rule,
        },
        None => SubscriptionSpec {
            name: name.ok_or_else(|| Problem::bad_field("name", "is required"))?,
            url: url.ok_or_else(|| Problem::bad_field("url", "is required"))?,
            secret: secret.unwrap_or_else(new_secret),
            enabled: enabled.unwrap_or(true),
            rule,
        },
    })
}

/// `GET /api/v1/webhooks`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every subscription, by name (never a secret).",
            body = WebhookList),
        Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn webhooks(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<WebhookList>, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    let items = state
        .store
        .webhooks()
        .await?
        .iter()
        .map(Webhook::from)
        .collect();
    Ok(Json(WebhookList { items }))
}

/// `POST /api/v1/webhooks`: a subscription; its secret is answered once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = NewWebhook,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The subscription is made; the answer shows its secret, \
            this once.", body = WebhookCreated),
        JsonBodyRefusals, Unauthorized, Forbidden, Conflict, Unavailable,
    )
)]
pub(super) async fn create_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    let map = json_object(&headers, body, &FIELDS).await?;
    let spec = spec_of(&map, None)?;
    let id = new_id();
    let now = state.now_ms();
    if !state.store.create_webhook(id, &spec, now).await? {
        return Err(Problem::conflict(
            "name",
            format!("{:?} is taken", spec.name),
        ));
    }
    let made = Subscription {
        id,
        name: spec.name,
        url: spec.url,
        secret: spec.secret,
        enabled: spec.enabled,
        rule: spec.rule,
        created_ms: now,
        updated_ms: now,
    };
    let answer = WebhookCreated {
        webhook: Webhook::from(&made),
        secret: made.secret,
    };
    Ok(no_store((StatusCode::CREATED, Json(answer))))
}

/// `GET /api/v1/webhooks/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The subscription, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription (never its secret).", body = Webhook),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    let id = path_id(&id, "webhook")?;
    let found = state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| no_webhook(&id))?;
    Ok(Json(Webhook::from(&found)))
}

/// `PATCH /api/v1/webhooks/{id}`: the members given replace the
/// subscription's (`null` clears a rule's member).
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The subscription, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$")),
    request_body = NewWebhook,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription as changed (never its secret).",
            body = Webhook),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn update_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Webhook>, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    let id = path_id(&id, "webhook")?;
    let map = json_object(&headers, body, &FIELDS).await?;
    let old = state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| no_webhook(&id))?;
    let spec = spec_of(&map, Some(old))?;
    match state
        .store
        .update_webhook(id, &spec, state.now_ms())
        .await?
    {
        Written::Done => {}
        Written::NotFound => return Err(no_webhook(&id)),
        Written::NameTaken => {
            return Err(Problem::conflict(
                "name",
                format!("{:?} is taken", spec.name),
            ))
        }
    }
    let found = state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| no_webhook(&id))?;
    Ok(Json(Webhook::from(&found)))
}

/// `DELETE /api/v1/webhooks/{id}`: the subscription and its deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The subscription, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The subscription and its deliveries are deleted."),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn delete_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    no_body(&headers, body).await?;
    let id = path_id(&id, "webhook")?;
    if !state.store.delete_webhook(id).await? {
        return Err(no_webhook(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The subscription, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$"), DeliveriesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription's deliveries, newest first, at most \
            `limit`.", body = DeliveryList),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn deliveries(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Json<DeliveryList>, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    let p = Params::from_query(query, &["limit", "state"])?;
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let wanted = match p.get("state") {
        None => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            Problem::bad_param("state", "`state` must be pending, delivered or dead")
        })?),
    };
    let id = path_id(&id, "webhook")?;
    if state.store.webhook(id).await?.is_none() {
        return Err(no_webhook(&id));
    }
    let items = state
        .store
        .webhook_deliveries(id, wanted, limit)
        .await?
        .into_iter()
        .map(DeliveryItem::from)
        .collect();
    Ok(Json(DeliveryList { items }))
}

/// `POST /api/v1/webhook-deliveries/{id}/replay`.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-deliveries/{id}/replay",
    tag = "webhooks",
    params(("id" = String, Path, description = "The delivery, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The delivery is pending again, due now, its attempts \
            counted afresh.", body = DeliveryItem),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<DeliveryItem>, Problem> {
    caller.may(Action::ManageWebhooks, None)?;
    no_body(&headers, body).await?;
    let id = path_id(&id, "delivery")?;
    let replayed = state
        .store
        .replay_delivery(id, state.now_ms())
        .await?
        .ok_or_else(|| Problem::not_found(format!("no delivery {}", hex::encode(id))))?;
    Ok(Json(DeliveryItem::from(replayed)))
}
