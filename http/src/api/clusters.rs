//! The map's view of a search, as both servers answer it:
//! `GET /api/v1/events/clusters`.
//!
//! The filters are those of `GET /api/v1/events` (parsed by
//! [`super::events::filter`], with its bounds and the public's limits),
//! plus `zoom` (0..=[`MAX_CLUSTER_ZOOM`], required). The events found are
//! grouped on a grid fixed to the earth whose cells are
//! `360° / 2^zoom / 4` wide (`sentinel_schema::query::ClusterQuery`), so
//! a map at world zoom over a hundred thousand events downloads a few
//! dozen clusters, not the events. Each cluster sits at the mean of its
//! events and names its event when it holds only one. At most
//! [`MAX_CLUSTERS`] clusters, the largest first; `total` counts every
//! event found, and `truncated` says that clusters were left out.
//!
//! **The public** (invariant 12): every location is snapped to the
//! 0.01° grid before it is grouped or averaged, cells are never finer
//! than that grid, and each cluster's position is snapped again; the
//! filters are the public's (a widened `bbox`, no `q` or `near`).
//!
//! Never does: group events itself (the store does, next to the data).

use axum::extract::State;
use axum::Json;
use sentinel_schema::access::{Action, COARSE_DEGREES};
use sentinel_schema::query::{ClusterQuery, MAX_CLUSTER_ZOOM};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::events::{filter, visibility, FILTER_PARAMS};
use super::json::snap;
use super::{Api, Caller};
use crate::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use crate::params::{Pairs, Params};
use crate::Problem;

/// The most clusters one answer holds (a map's view holds a few hundred
/// cells; more means a zoom far deeper than the view).
pub const MAX_CLUSTERS: usize = 5000;

/// One cell of the grid with the events in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterItem {
    /// The mean longitude of its events (snapped to the 0.01° grid for
    /// the public).
    pub lon: f64,
    pub lat: f64,
    /// How many events, at least one.
    #[schema(minimum = 1)]
    pub count: u64,
    /// The event, when the cluster holds only one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, pattern = "^[0-9a-f]{32}$")]
    pub id: Option<String>,
}

/// The clusters of a map's view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterSet {
    /// The largest first.
    pub clusters: Vec<ClusterItem>,
    /// Every event the filters find: the clusters' counts add up to it
    /// unless `truncated`.
    pub total: u64,
    /// Whether more than 5000 clusters were found (the smallest are left
    /// out; ask a smaller `bbox` or `zoom`).
    pub truncated: bool,
}

/// The query of `GET /api/v1/events/clusters`: the filters of
/// `GET /api/v1/events` and the map's zoom. Any other parameter, or one
/// given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ClustersQuery {
    /// The map's zoom: cells are 360° / 2^zoom / 4 wide.
    #[param(minimum = 0, maximum = 22)]
    pub zoom: i64,
    /// `minLon,minLat,maxLon,maxLat` in degrees; `minLon > maxLon` crosses
    /// the antimeridian.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`. Not for the public.
    pub near: Option<String>,
    /// Metres around `near`, in (0, 20100000]; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Words that must all occur in the title, description or notes; 1 to
    /// 1000 bytes, not blank. Not for the public.
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    /// One status, or several separated by commas.
    pub status: Option<String>,
    /// Exactly this category, 1 to 64 bytes.
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    /// Assigned to exactly this account name, 1 to 128 bytes (not for
    /// the public).
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// Reported from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Reported before this time (Unix ms); not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
}

/// The zoom of a query: required, 0..=[`MAX_CLUSTER_ZOOM`].
fn zoom(p: &Params) -> Result<u8, Problem> {
    let what = format!("an integer 0..={MAX_CLUSTER_ZOOM}");
    let zoom = p
        .parsed::<u8>("zoom", &what)?
        .ok_or_else(|| Problem::bad_param("zoom", format!("`zoom` is required: {what}")))?;
    if zoom > MAX_CLUSTER_ZOOM {
        return Err(Problem::bad_param(
            "zoom",
            format!("`zoom` is {zoom}, allowed 0..={MAX_CLUSTER_ZOOM}"),
        ));
    }
    Ok(zoom)
}

/// The question a query asks; `public` applies the public's limits.
pub fn cluster_query(p: &Params, public: bool) -> Result<ClusterQuery, Problem> {
    Ok(ClusterQuery {
        zoom: zoom(p)?,
        filter: filter(p, public)?,
        snap: public.then_some(COARSE_DEGREES),
        limit: MAX_CLUSTERS,
    })
}

/// `GET /api/v1/events/clusters`.
#[utoipa::path(
    get,
    path = "/api/v1/events/clusters",
    tag = "events",
    params(ClustersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events the filters find, grouped on the zoom's \
            grid, the largest cluster first.", body = ClusterSet),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn clusters(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<ClusterSet>, Problem> {
    let v = visibility(caller.may(Action::ReadEvents, None)?);
    let known: Vec<&str> = FILTER_PARAMS.iter().copied().chain(["zoom"]).collect();
    let p = Params::from_query(query, &known)?;
    let question = cluster_query(&p, v.is_public())?;
    let found = api.backend.clusters(question).await?;
    let coarse = |x: f64| if v.is_public() { snap(x) } else { x };
    Ok(Json(ClusterSet {
        clusters: found
            .clusters
            .iter()
            .map(|c| ClusterItem {
                lon: coarse(c.lon),
                lat: coarse(c.lat),
                count: c.count,
                id: c.event.filter(|_| c.count == 1).map(|e| e.to_hex()),
            })
            .collect(),
        total: found.total,
        truncated: found.truncated,
    }))
}
