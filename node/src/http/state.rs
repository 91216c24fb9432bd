//! What every handler shares ([`ApiState`]): the shared routes' [`Api`]
//! (the node as their backend, and the live feed), and for the node's own
//! routes the node itself, the follower to wake after a write, and the
//! clock.
//!
//! Never does: answer a request itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::FromRef;
use sentinel_certs::CaCert;
use sentinel_http::api::{Api, Feed};
use sentinel_http::clock::Clock;
use sentinel_http::Problem;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::backend::NodeBackend;
use super::blocking::on_node;
use super::feed::Follower;
use crate::dial::Dialer;
use crate::files::CA_FILE;
use crate::node::{Node, NodeError};
use crate::sensors::Ingest;

/// The API's state: the node (with sync, behind one lock), its backend
/// for the shared routes, and the live feed.
#[derive(Clone)]
pub struct ApiState {
    api: Api,
    node: Arc<Mutex<Node>>,
    follower: Follower,
    clock: Clock,
    /// What the backend was built from, to build it again
    /// ([`ApiState::with_ingest`], [`ApiState::with_clock`]).
    ca: Option<Arc<CaCert>>,
    ingest: Option<Ingest>,
    /// Uploads taken at once (one permit each) and how many.
    uploads: Arc<Semaphore>,
    max_uploads: usize,
    /// Where uploads are spooled while they arrive.
    spool: PathBuf,
    /// The peers "sync now" dials (`serve --peer`); `None`: no network.
    dialer: Option<Dialer>,
}

/// Uploads taken at once, by default: each holds a spool file on disk,
/// not its bytes in memory, until it is stored.
pub const MAX_UPLOADS: usize = 4;
/// The folder of the data directory uploads are spooled to while they
/// arrive; each spool file is removed when its upload ends.
pub const UPLOAD_SPOOL_DIR: &str = "uploads";

impl FromRef<ApiState> for Api {
    fn from_ref(state: &ApiState) -> Api {
        state.api.clone()
    }
}

fn poisoned() -> NodeError {
    NodeError::Net("the node's lock is poisoned".into())
}

impl ApiState {
    /// The API over `node`, on the system clock; reads the CA certificate
    /// `enroll` left in the data directory, if any, and checks sensor
    /// pushes against it with a revocation handle of its own.
    pub fn new(node: Arc<Mutex<Node>>) -> Result<ApiState, NodeError> {
        let (ca, ingest, spool) = {
            let guard = node.lock().map_err(|_| poisoned())?;
            let spool = guard.dir().join(UPLOAD_SPOOL_DIR);
            let path = guard.dir().join(CA_FILE);
            if path.exists() {
                let ca = CaCert::load(&path)?;
                let ingest = Ingest::for_node(&guard, &ca)?;
                (Some(Arc::new(ca)), Some(ingest), spool)
            } else {
                (None, None, spool)
            }
        };
        Ok(ApiState::build(node, ca, ingest, Clock::system(), spool))
    }

    fn build(
        node: Arc<Mutex<Node>>,
        ca: Option<Arc<CaCert>>,
        ingest: Option<Ingest>,
        clock: Clock,
        spool: PathBuf,
    ) -> ApiState {
        let follower = Follower::new(node.clone());
        let backend = NodeBackend::new(
            node.clone(),
            ca.clone(),
            ingest.clone(),
            clock.clone(),
            follower.clone(),
        );
        ApiState {
            api: Api::new(Arc::new(backend), follower.feed()),
            node,
            follower,
            clock,
            ca,
            ingest,
            uploads: Arc::new(Semaphore::new(MAX_UPLOADS)),
            max_uploads: MAX_UPLOADS,
            spool,
            dialer: None,
        }
    }

    /// Checks sensor pushes with `ingest` — with `serve`, the revocation
    /// handle its sync sessions share, so a revocation learned by sync
    /// applies to the next push. A new feed comes with it: take
    /// [`ApiState::feed`] afterwards.
    pub fn with_ingest(self, ingest: Ingest) -> ApiState {
        let dialer = self.dialer;
        ApiState {
            dialer,
            ..ApiState::build(self.node, self.ca, Some(ingest), self.clock, self.spool)
        }
    }

    /// Lets `POST /api/v1/sync` start rounds with `dialer`'s peers
    /// (`serve --peer`), and `GET /api/v1/sync` show them.
    pub fn with_dialer(self, dialer: Dialer) -> ApiState {
        ApiState {
            dialer: Some(dialer),
            ..self
        }
    }

    /// The dialer of "sync now", if the API has one.
    pub(crate) fn dialer(&self) -> Option<&Dialer> {
        self.dialer.as_ref()
    }

    /// Reads `clock` rather than the system clock (tests: token expiry,
    /// report times). A new feed comes with it.
    pub fn with_clock(self, clock: Clock) -> ApiState {
        let dialer = self.dialer;
        ApiState {
            dialer,
            ..ApiState::build(self.node, self.ca, self.ingest, clock, self.spool)
        }
    }

    /// The state with its shared routes' [`Api`] changed by `f` (tests:
    /// `|api| api.map_feed(|f| f.rechecking_every(..))`). Apply it after
    /// [`ApiState::with_clock`] and [`ApiState::with_ingest`], which make
    /// a new one.
    pub fn map_api(self, f: impl FnOnce(Api) -> Api) -> ApiState {
        ApiState {
            api: f(self.api),
            ..self
        }
    }

    /// Takes at most `max` uploads at once (at least 1).
    pub fn with_max_uploads(self, max: usize) -> ApiState {
        let max = max.max(1);
        ApiState {
            uploads: Arc::new(Semaphore::new(max)),
            max_uploads: max,
            ..self
        }
    }

    /// A place among the uploads taken at once; `503` when they are all
    /// taken.
    pub(crate) fn upload_slot(&self) -> Result<OwnedSemaphorePermit, Problem> {
        self.uploads.clone().try_acquire_owned().map_err(|_| {
            Problem::busy(format!(
                "{} uploads are being taken already; retry in a moment",
                self.max_uploads
            ))
        })
    }

    /// Where uploads are spooled ([`UPLOAD_SPOOL_DIR`] of the data
    /// directory).
    pub fn spool_dir(&self) -> &std::path::Path {
        &self.spool
    }

    /// Removes spool files an earlier run left behind (a crash during an
    /// upload); none of them is an upload in progress when the API starts.
    pub(crate) fn clear_spool(&self) {
        let Ok(dir) = std::fs::read_dir(&self.spool) else {
            return;
        };
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with("upload-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The live feed of this API (`GET /api/v1/feed`).
    pub fn feed(&self) -> &Feed {
        self.api.feed()
    }

    /// The clock the API reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Unix milliseconds now, on the API's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Runs `f` on the node, under its lock, on a blocking thread.
    pub(crate) async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        on_node(&self.node, f).await
    }

    /// Runs a write on the node, as [`ApiState::with_node`], and wakes the
    /// live feed so what it changed goes out now.
    pub(crate) async fn write_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let written = on_node(&self.node, f).await;
        self.follower.poke();
        written
    }
}
