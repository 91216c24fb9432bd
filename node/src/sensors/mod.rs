//! Sensors on the node: readings pushed over HTTP (`docs/protocol.md`
//! part 3), checked by `sentinel_sync::push` (verify, then apply) against the
//! deployment CA and the revocations the node's sync sessions use, then
//! projected ([`crate::store::readings`]) and run through the rules
//! ([`crate::rules`]).
//!
//! A fork (a second entry at a seq the node holds) is kept as evidence by
//! the store, refused, and raised as an alert: an error log line naming
//! the sensor and seq, the counter `sentinel_sensor_forks_total`, and the
//! sensor's `forks` in `GET /api/v1/sensors` (and `audit verify`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentinel_certs::{CaCert, RevocationHandle};
use sentinel_schema::AuthorId;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::push::{self, PushError, PushReport, MAX_FUTURE_MS};
use sentinel_sync::Revocations;

use crate::node::{Node, NodeError};
use crate::store::StoreError;

pub use crate::rules::{Raised, RuleEngine};

/// The counter of sensor forks seen (`/metrics`).
pub const FORKS_METRIC: &str = "sentinel_sensor_forks_total";

/// What checks a push: the deployment CA, with the revocation handle the
/// node's sync sessions and TLS verifiers share.
#[derive(Clone)]
pub struct Ingest {
    trust: Arc<CaTrust>,
    revocations: RevocationHandle,
    /// When pushed readings were last projected.
    views_projected: Arc<Mutex<Instant>>,
}

/// How far the readings views may fall behind pushes (see
/// [`Ingest::receive`]).
const VIEWS_EVERY: Duration = Duration::from_millis(250);

/// An accepted push: the answer for the sensor, and what the rules raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    pub report: PushReport,
    pub raised: Vec<Raised>,
}

impl Ingest {
    /// Checks pushes against `ca` and the revocations in `revocations`
    /// (the CA list it holds, and the hub revocation entries added to it).
    pub fn new(ca: CaCert, revocations: RevocationHandle) -> Ingest {
        metrics::describe_counter!(
            FORKS_METRIC,
            "Sensor entries refused as forks (a second entry at a held seq; kept as evidence)"
        );
        metrics::counter!(FORKS_METRIC).increment(0);
        Ingest {
            trust: Arc::new(CaTrust::with_revocations(ca, revocations.clone())),
            revocations,
            views_projected: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// For a node whose API runs without sync sessions: a revocation
    /// handle of its own, loaded as `Net::load` loads the sessions' one.
    pub fn for_node(node: &Node, ca: &CaCert) -> Result<Ingest, NodeError> {
        let revocations = crate::revocations::revocation_handle(node.store(), ca)?;
        Ok(Ingest::new(ca.clone(), revocations))
    }

    /// Whether the views are due to catch up; if so, notes that they do.
    fn views_due(&self) -> bool {
        let Ok(mut last) = self.views_projected.lock() else {
            return true;
        };
        if last.elapsed() < VIEWS_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// The CA's revocation list in force (hub revocation entries are
    /// asked per author through the trust anchor).
    fn revocations(&self) -> Revocations {
        Revocations::from(&*self.revocations.current())
    }

    /// Checks and stores one push body, all or nothing, then runs the
    /// rules on what was stored (the push comes from the sensor itself):
    /// [`Ingest::verify`] then [`Ingest::apply`], both on `node`. Call it
    /// under the node's lock, the store's single writer.
    pub fn receive(
        &self,
        node: &mut Node,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Ingested, PushError<StoreError>> {
        let verified = {
            let node = &*node;
            self.verify(body, now_ms, |author, certificate| {
                push::stored(node, author, certificate)
            })?
        };
        self.apply(node, verified, now_ms)
    }

    /// Checks a push body up to the chain (`push::verify`: certificate,
    /// signatures, revocation, role, clocks) without the node's lock:
    /// `stored` reads the author's certificate and head, for which a
    /// caller takes the lock only for that read (as the HTTP API's push
    /// does). CPU-bound: run it on a blocking thread.
    pub fn verify(
        &self,
        body: &[u8],
        now_ms: u64,
        stored: impl FnOnce(&AuthorId, bool) -> Result<push::Stored, StoreError>,
    ) -> Result<push::Verified, PushError<StoreError>> {
        let revocations = self.revocations();
        push::verify(
            &*self.trust,
            &revocations,
            now_ms,
            MAX_FUTURE_MS,
            body,
            stored,
        )
    }

    /// Stores a [`Ingest::verify`]ed push, all or nothing, judging its
    /// chain against what the node holds now, then runs the rules on what
    /// was stored. Call it under the node's lock, the store's single
    /// writer. The readings are durable when this returns `Ok`, whatever
    /// became of the views and the rules (their failures are logged). The
    /// readings views follow within 250 ms of pushes, or at the next query
    /// ([`Node::catch_up_views`]).
    pub fn apply(
        &self,
        node: &mut Node,
        verified: push::Verified,
        now_ms: u64,
    ) -> Result<Ingested, PushError<StoreError>> {
        let accepted = match push::apply(node, verified, now_ms) {
            Ok(a) => a,
            Err(e) => {
                if let (true, PushError::Refused { author, seq, .. }) = (e.is_fork(), &e) {
                    alert_fork(author, *seq);
                }
                return Err(e);
            }
        };
        // Views follow the log at most VIEWS_EVERY behind (as for sync
        // batches): projecting after every push would add a second durable
        // commit per push. Readings queries catch up before they read, and
        // the rules read what they need from the entries themselves.
        if !accepted.stored.is_empty() && self.views_due() {
            if let Err(e) = node.catch_up_views() {
                tracing::error!(error = %e, "projecting pushed readings failed; the views will catch up later");
            }
        }
        let raised = match node.raise_from_readings(&accepted.stored, now_ms) {
            Ok(raised) => raised,
            Err(e) => {
                tracing::error!(error = %e, "running the sensor rules failed");
                Vec::new()
            }
        };
        Ok(Ingested {
            report: accepted.report,
            raised,
        })
    }
}

/// Raises the alert for a fork of `sensor`'s chain at `seq`: an error
/// line and the counter [`FORKS_METRIC`].
pub(crate) fn alert_fork(sensor: &AuthorId, seq: u64) {
    metrics::counter!(FORKS_METRIC).increment(1);
    tracing::error!(
        sensor = %sensor.to_hex(),
        seq,
        "sensor fork: a second entry at a seq this node holds; kept as evidence, refused. \
         Re-enroll the sensor under a new key and revoke the old one."
    );
}
