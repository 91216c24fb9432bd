//! The node's HTTP API: what an officer's browser or app on the device
//! uses, JSON over HTTP (axum), under `/api/v1`.
//!
//! **Safe by default.** The CLI serves it only when asked (`sentinel-node
//! serve --http [ADDR]`), on `127.0.0.1:8081` unless another address is
//! given: it is plain HTTP. Every route but `login` wants a bearer token
//! ([`auth`]) and checks the caller against the matrix in
//! `sentinel_schema::access` (`docs/security.md` 3.3) — with the event's
//! facts for object-level rules: its reporter (the actor of the entry that
//! created it) and its assignee. The public gets redacted events.
//!
//! **Input.** Errors are `application/problem+json` naming the refused
//! field or parameter. JSON bodies are at most 16 KiB, refused (413) from
//! their `Content-Length` before they are read; media at most
//! `MAX_MEDIA_BYTES`, counted while streaming. Unknown body members and
//! unknown or repeated query parameters are refused. Coordinates, text
//! lengths (`sentinel_schema::limits`) and the status workflow are checked
//! before anything is written, and every change a request makes is one
//! transaction: a refused request leaves nothing behind.
//!
//! # Routes
//!
//! | Route | What |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `POST /api/v1/login`, `POST /api/v1/logout` | bearer tokens |
//! | `GET /api/v1/events` | search: `bbox`, `near`+`radius`, `q`, `status`, `category`, `min_severity`, `max_severity`, `from`, `to`, `limit`, `after` |
//! | `POST /api/v1/events` | report: `title`, `description`, `category`, `severity`, `location` `{lon, lat}`, `reported_ms` |
//! | `GET /api/v1/events/{id}` | one event; with history and conflicts for those who may read them |
//! | `PATCH /api/v1/events/{id}` | `title`, `description`, `category`, `severity`, `location` |
//! | `POST /api/v1/events/{id}/notes` | `{"text"}` |
//! | `POST /api/v1/events/{id}/assign` | `{"assignee"}` |
//! | `POST /api/v1/events/{id}/{accept,start,resolve,close,reopen}` | the workflow |
//! | `POST /api/v1/events/{id}/media` | multipart, one part `file` (and optionally `name`) |
//! | `GET /api/v1/media/{hash}` | a photo or video by its SHA-256 |
//! | `GET /api/v1/outbox` | entries written here awaiting a hub receipt |

pub mod auth;
mod events;
mod media;
mod outbox;
mod params;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use sentinel_certs::CaCert;
use sentinel_schema::EventError;

pub use auth::Caller;
pub use sentinel_http::{Problem, PROBLEM_JSON};

use crate::node::{Node, NodeError, CA_FILE};

/// The default address of `serve --http`: this device only.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8081";

/// What every handler shares: the node (with sync, behind one lock) and
/// the deployment CA that vouches for the hubs whose role grants count.
#[derive(Clone)]
pub struct ApiState {
    node: Arc<Mutex<Node>>,
    ca: Option<Arc<CaCert>>,
}

impl ApiState {
    /// The API over `node`; reads the CA certificate `enroll` left in the
    /// data directory, if any.
    pub fn new(node: Arc<Mutex<Node>>) -> Result<ApiState, NodeError> {
        let dir = node
            .lock()
            .map_err(|_| NodeError::Net("the node's lock is poisoned".into()))?
            .dir()
            .to_path_buf();
        let path = dir.join(CA_FILE);
        let ca = if path.exists() {
            Some(Arc::new(CaCert::load(&path)?))
        } else {
            None
        };
        Ok(ApiState { node, ca })
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs `f` on the node, under its lock, on a blocking thread (SQLite and
/// fsync must not stall the async workers).
pub(crate) async fn with_node<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let node = state.node.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = node
            .lock()
            .map_err(|_| Problem::unavailable(&"the node's lock is poisoned"))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| Problem::unavailable(&e))?
}

/// A refused edit, naming the field at fault.
pub(crate) fn event_problem(e: EventError, field: &str) -> Problem {
    match e {
        // The schema names a note's text `note.text`; the body calls it `text`.
        EventError::Invalid { field, reason } => {
            Problem::bad_field(if field == "note.text" { "text" } else { field }, reason)
        }
        EventError::InvalidTransition { from, to } => Problem::conflict(
            "status",
            format!("the event is {from}; it cannot become {to} from there"),
        ),
        EventError::Unchanged => Problem::conflict(field, "the edit changes nothing"),
        other => Problem::unavailable(&other),
    }
}

impl From<NodeError> for Problem {
    fn from(e: NodeError) -> Problem {
        match e {
            NodeError::NoSuchEvent(id) => Problem::not_found(format!("no event {id}")),
            NodeError::Event(e) => event_problem(e, "body"),
            other => Problem::unavailable(&other),
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

/// Every route of the API.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/events", get(events::list).post(events::report))
        .route("/events/{id}", get(events::detail).patch(events::edit))
        .route("/events/{id}/notes", post(events::note))
        .route("/events/{id}/assign", post(events::assign))
        .route("/events/{id}/accept", post(events::accept))
        .route("/events/{id}/start", post(events::start))
        .route("/events/{id}/resolve", post(events::resolve))
        .route("/events/{id}/close", post(events::close))
        .route("/events/{id}/reopen", post(events::reopen))
        .route(
            "/events/{id}/media",
            post(media::upload).layer(DefaultBodyLimit::max(media::MAX_UPLOAD_BYTES)),
        )
        .route("/media/{hash}", get(media::download))
        .route("/outbox", get(outbox::outbox));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .fallback(not_found)
        .with_state(state)
}

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Binds `addr` for the API.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// 201 Created.
pub(crate) const CREATED: StatusCode = StatusCode::CREATED;
