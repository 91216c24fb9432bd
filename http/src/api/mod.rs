//! The routes node and hub both serve, written once.
//!
//! A route both servers answer has one handler here, so it has the same
//! parameters, bounds, JSON shape and problems on either: signing in and
//! out and one's own password ([`auth`]), event search and detail ([`events`]),
//! the exports as GeoJSON, CSV and KML ([`export`]),
//! the map's clusters ([`clusters`]), near duplicates, hotspots and
//! summaries ([`analysis`]),
//! the live feed ([`feed`]), sensor pushes, readings, the sensors list and
//! the rules that fired ([`sensors`]), the server's own OpenAPI document, and the operations
//! routes `/healthz`, `/readyz` and `/metrics` ([`ops`]). What only one server serves stays in that server
//! (the hub: timeline, nodes, alerts, devices, users, admin actions; the
//! node: reporting and working events, uploads, outbox; media each from its
//! own blob folder), and a test
//! compares the two OpenAPI documents route by route.
//!
//! Each server plugs in its store through [`Backend`] (the questions the
//! shared routes ask, in the vocabulary of `sentinel_schema::query`) and
//! hands the routes an [`Api`] through axum's `FromRef`, so its own state
//! can carry more.
//!
//! Never does: storage, or know whether it runs in a node or a hub.

pub mod analysis;
pub mod auth;
mod backend;
mod caller;
pub mod clusters;
pub mod events;
pub mod export;
pub mod feed;
pub mod json;
pub mod ops;
pub mod sensors;

use std::sync::Arc;

use axum::extract::FromRef;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{add_components, rate_limited};

pub use backend::{Backend, BoxedBackend, PasswordRecord, PushRefusal, RuleTrigger};
pub use caller::Caller;
pub use feed::Feed;

use crate::Problem;
pub use ops::Document;

/// The prefix of every route behind the rate limit.
pub const API_PREFIX: &str = "/api/v1";

/// What the shared routes need: the server's [`Backend`] and its live feed.
#[derive(Clone)]
pub struct Api {
    backend: Arc<dyn Backend>,
    feed: Feed,
    /// The analysis summary's language model; `None`: the local answer.
    llm: Option<Arc<crate::llm::Llm>>,
    /// Test hook (feature `testing`): requests without an Authorization
    /// header act as this person with this role, so tests of what a route
    /// answers need not sign in. Never set outside tests.
    #[cfg(feature = "testing")]
    trusted: Option<(String, sentinel_schema::PersonRole)>,
}

impl Api {
    pub fn new(backend: Arc<dyn Backend>, feed: Feed) -> Api {
        Api {
            backend,
            feed,
            llm: None,
            #[cfg(feature = "testing")]
            trusted: None,
        }
    }

    /// Test hook: see the field `trusted`.
    #[cfg(feature = "testing")]
    pub fn trusting(self, name: &str, role: sentinel_schema::PersonRole) -> Api {
        Api {
            trusted: Some((name.to_owned(), role)),
            ..self
        }
    }

    /// The API with its feed changed by `f` (tests:
    /// [`Feed::rechecking_every`]; a subscriber cap).
    pub fn map_feed(self, f: impl FnOnce(Feed) -> Feed) -> Api {
        Api {
            feed: f(self.feed),
            ..self
        }
    }

    /// The API with the analysis summary's language model (`None`: the
    /// local answer only, and nothing is ever sent).
    pub fn with_llm(self, llm: Option<crate::llm::Llm>) -> Api {
        Api {
            llm: llm.map(Arc::new),
            ..self
        }
    }

    /// The analysis summary's language model, if configured.
    pub fn llm(&self) -> Option<&crate::llm::Llm> {
        self.llm.as_deref()
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The live feed these routes serve.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }
}

/// The `/api/v1` routes both servers serve (behind the rate limit).
pub fn shared_routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Api: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::session))
        .routes(routes!(auth::change_password))
        .routes(routes!(events::search))
        .routes(routes!(clusters::clusters))
        .routes(routes!(events::detail))
        .routes(routes!(export::export))
        .routes(routes!(export::export_csv))
        .routes(routes!(export::export_kml))
        .routes(routes!(feed::feed))
        .routes(routes!(sensors::push))
        .routes(routes!(sensors::readings))
        .routes(routes!(sensors::sensors))
        .routes(routes!(sensors::rule_alerts))
        .routes(routes!(analysis::duplicates))
        .routes(routes!(analysis::hotspots))
        .routes(routes!(analysis::summary::summary))
        .routes(routes!(ops::openapi_json))
}

/// The answer to a path no route has: a problem+json `404`, the same on
/// both servers (a router's `fallback`).
pub async fn no_such_route() -> Problem {
    Problem::not_found("no such route")
}

/// The operations routes both servers serve, never rate-limited.
pub fn ops_routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Api: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// A server's OpenAPI document, made from the route lists its router is
/// made from: `api` (its `/api/v1` routes, the shared ones among them)
/// and `ops` (the operations routes), titled `title`, described by
/// `description` and versioned `version` (the server's own), with the
/// components both documents share (the `Problem` schema, the bearer
/// scheme) and the rate limit's `429` on every route under
/// [`API_PREFIX`], as the router puts it there.
pub fn openapi_document<S>(
    title: &str,
    version: &str,
    description: &str,
    api: OpenApiRouter<S>,
    ops: OpenApiRouter<S>,
) -> OpenApi
where
    S: Clone + Send + Sync + 'static,
{
    let (_, api) = api.split_for_parts();
    let (_, ops) = ops.split_for_parts();
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(version)
                .description(Some(description))
                .build(),
        )
        .build()
        .merge_from(api)
        .merge_from(ops);
    add_components(&mut doc);
    rate_limited(&mut doc, API_PREFIX);
    doc
}
