//! What every handler of the hub's API reads ([`ApiState`]): the shared
//! routes' [`Api`] (the hub's [`HubBackend`] and the live feed), and what
//! only the hub's own routes need (the store, the hub's own chain, the
//! blob folder).
//!
//! Never does: handle a request.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use sentinel_http::api::{Api, Feed};
use sentinel_http::clock::Clock;
use sentinel_http::Problem;
use sentinel_sync::blobs::MediaStore;

use super::backend::HubBackend;
use crate::own::OwnChain;
use crate::store::PgStore;

/// The state of the hub's router.
#[derive(Clone)]
pub struct ApiState {
    /// What the shared routes (`sentinel_http::api`) use: the backend over
    /// the store, its clock, and the live feed.
    pub api: Api,
    pub store: PgStore,
    /// The hub's own chain, for the entries the API writes (role grants,
    /// admin actions, revocations); without it those routes answer 503.
    pub own: Option<Arc<OwnChain>>,
    /// The hub's blob folder, for `GET /api/v1/media/{hash}`; without it
    /// every blob is one that has not arrived (404).
    pub media: Option<Arc<MediaStore>>,
}

impl FromRef<ApiState> for Api {
    fn from_ref(state: &ApiState) -> Api {
        state.api.clone()
    }
}

impl ApiState {
    /// The API over `store`: a backend that takes no sensor pushes (503),
    /// the system clock, and a live feed nothing publishes to (see
    /// [`ApiState::with_api`] for the hub's wiring).
    pub fn new(store: PgStore, own: Option<Arc<OwnChain>>) -> ApiState {
        let backend = HubBackend::new(store.clone(), own.as_ref().map(|o| o.author()));
        ApiState::with_api(Api::new(Arc::new(backend), Feed::new()), store, own)
    }

    /// The API with `api` for the shared routes: one made of a
    /// [`HubBackend`] with sensor pushes or another clock, and the live
    /// feed the projector's changes reach (`super::live::follow`).
    pub fn with_api(api: Api, store: PgStore, own: Option<Arc<OwnChain>>) -> ApiState {
        ApiState {
            api,
            store,
            own,
            media: None,
        }
    }

    /// Serves media from `media` (the folder the sync server's media
    /// connections fill: `crate::net::HubNet::media`).
    pub fn with_media(self, media: Arc<MediaStore>) -> ApiState {
        ApiState {
            media: Some(media),
            ..self
        }
    }

    /// The state with its [`Api`] changed by `f`; in tests,
    /// `|api| api.trusting(name, role)` (feature `testing` of
    /// sentinel-http) makes requests without a token act as that person.
    pub fn map_api(self, f: impl FnOnce(Api) -> Api) -> ApiState {
        ApiState {
            api: f(self.api),
            ..self
        }
    }

    /// The clock every route reads (the backend's).
    pub fn clock(&self) -> &Clock {
        self.api.backend().clock()
    }

    /// Unix milliseconds now, by [`ApiState::clock`].
    pub fn now_ms(&self) -> u64 {
        self.clock().now_ms()
    }

    /// The hub's own chain; 503 when this API has none.
    pub fn own_chain(&self) -> Result<&Arc<OwnChain>, Problem> {
        self.own.as_ref().ok_or_else(|| Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "urn:sentinel:problem:unavailable",
            title: "Service unavailable",
            detail: "this hub has no identity to sign entries with".into(),
            field: None,
        })
    }
}
