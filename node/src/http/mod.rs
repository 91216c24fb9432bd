//! The node's HTTP API: what an officer's browser or app on the device
//! uses, JSON over HTTP (axum), under `/api/v1`.
//!
//! **One contract.** The routes both servers serve — signing in and out,
//! event search, detail and export, the live feed, sensors, and the
//! operations routes — are written once in `sentinel_http::api`
//! (invariant 11); the node plugs its store in as their backend
//! ([`backend`]) and adds its own routes: reporting and working events,
//! media, the outbox, the links to peers ([`events`], [`workflow`],
//! [`media`], [`outbox`], [`sync`]).
//!
//! **Safe by default.** The CLI serves it only when asked (`sentinel-node
//! serve --http [ADDR]`), on `127.0.0.1:8081` unless another address is
//! given: it is plain HTTP. Every route but `login` (and sensor pushes,
//! signed entries) wants a bearer token and checks the caller against the
//! matrix in `sentinel_schema::access` (`docs/security.md` 3.3) — with
//! the event's facts for object-level rules: its reporter (the actor of
//! the entry that created it) and its assignee ([`access`]). The public
//! gets redacted events. Roles come from hub grants, and for the device's
//! own officers from the CLI's mark until a grant names them
//! ([`crate::roles`]).
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
//! | `GET /readyz` | `200` when the store answers and its schema is the latest migration, else `503` |
//! | `GET /metrics` | Prometheus text format, unauthenticated: keep it on the device |
//! | `POST /api/v1/login`, `POST /api/v1/logout` | bearer tokens |
//! | `POST /api/v1/password` | one's own password, the current one required |
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
//! | `GET /api/v1/sync` | the last session with each peer and hub, the peers configured, the outbox's size (see [`sync`]) |
//! | `POST /api/v1/sync` | sync now: one round with every peer `serve --peer` names, in the background (`202`) |
//! | `GET /api/v1/export.geojson`, `.csv`, `.kml` | the events a search finds, as a GeoJSON FeatureCollection, CSV or KML, streamed |
//! | `GET /api/v1/feed` | Server-Sent Events: each event as it changes, here or by sync (see [`feed`]) |
//! | `POST /api/v1/sensors/entries` | a sensor's signed readings, `application/cbor`; no token |
//! | `GET /api/v1/sensors/readings` | readings: `sensor`, `kind`, `name`, `from`, `to`, `bbox`, `limit`, `after`; or per `bucket_ms` |
//! | `GET /api/v1/sensors` | the sensors seen, with their forks |
//! | `GET /api/v1/openapi.json` | this API's OpenAPI 3.1 document, no token needed (see [`openapi`]) |
//!
//! The router and the document are made from one route list
//! ([`openapi`]): each handler's `#[utoipa::path]` says its method, path,
//! parameters and answers. Rate limits, CORS and request logs:
//! [`router`].
//!
//! Never does: SQL (the store answers), or anything a route both servers
//! serve does (that is `sentinel_http::api`'s).

mod access;
pub mod backend;
mod blocking;
mod events;
pub mod feed;
mod media;
pub mod openapi;
mod outbox;
mod params;
mod problems;
pub mod router;
pub mod schemas;
pub mod state;
mod sync;
mod workflow;

pub use router::{
    bind, router, router_with, serve, ApiOptions, DEFAULT_HTTP_ADDR,
    DEFAULT_LOGIN_RATE_LIMIT_BURST, DEFAULT_LOGIN_RATE_LIMIT_PER_MIN, DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PER_S,
};
pub use sentinel_http::api::feed::FEED_BUFFER;
pub use sentinel_http::api::{Caller, Feed};
pub use sentinel_http::{Problem, PROBLEM_JSON};
pub use state::ApiState;
