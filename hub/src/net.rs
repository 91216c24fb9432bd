//! The hub's network identity and what its sync server shares between
//! connections ([`HubNet`]): TLS configurations and the trust anchor,
//! the one [`RevocationHandle`] every handshake and session checks, the
//! relay every writer bumps, where the projector announces the events it
//! changed, and the optional parts (blob folder, own chain, checkpoints,
//! sensor rules).
//!
//! **Revocations.** Peers are checked against the CA list and the
//! `revocation` entries of hubs: those the hub signs (added by the own
//! chain as it appends them, [`HubNet::with_own_chain`]), those that
//! arrive by sync (added by the server as each is applied) and, at start,
//! those the log holds ([`HubNet::for_store`]).
//!
//! **Relay and changes.** [`HubNet::relay`] is bumped whenever entries
//! reach the log (sessions, the own chain, sensor pushes); it wakes the
//! projector and every live session. The projector announces each event
//! it wrote on [`HubNet::changes`], which the live feed follows.
//!
//! Never does: accept connections (`crate::server`), project
//! (`crate::projector`), or serve HTTP.

use std::sync::Arc;
use std::time::Duration;

use sentinel_certs::{Enrollment, FreshnessPolicy, RevocationHandle};
use sentinel_schema::EventId;
use sentinel_sync::admission::Limits;
use sentinel_sync::blobs::MediaStore;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic;
use tokio::sync::{broadcast, watch};

use crate::own::OwnChain;
use crate::sensors::{SensorIngest, SensorRules};
use crate::store::{PgStore, StoreError};

/// Changed events kept for a slow follower of [`HubNet::changes`] before
/// it is told it lagged.
pub const CHANGES_BUFFER: usize = 4096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("certificates: {0}")]
    Certs(#[from] sentinel_certs::CertsError),
    #[error("the stored revocation list: {0}")]
    Revocations(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("network: {0}")]
    Net(#[from] quic::DriverError),
    #[error("the hub must run on a multi-thread tokio runtime")]
    CurrentThreadRuntime,
}

/// The hub's identity and TLS configuration, and what its connections
/// share.
pub struct HubNet {
    pub enrollment: Enrollment,
    /// Shared with the TLS verifiers: a newer list learned from a peer
    /// applies to the next handshake.
    pub revocations: RevocationHandle,
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub trust: Arc<CaTrust>,
    /// The blob folder; `None`: the hub takes no media connections.
    pub media: Option<Arc<MediaStore>>,
    /// The hub's own chain: the server pushes what is appended to it to
    /// live sessions at once.
    pub own: Option<Arc<OwnChain>>,
    /// How often the server signs a checkpoint of the heads (when they
    /// moved) into the own chain; `None`: never.
    pub checkpoint_every: Option<Duration>,
    /// Bumped whenever entries reach the log: by sessions, by the own
    /// chain, and by sensor pushes over HTTP ([`crate::sensors`]); wakes
    /// the projector and every live session.
    pub relay: Arc<watch::Sender<u64>>,
    /// Where the projector announces each event it wrote (the live feed
    /// follows it: `crate::api::live`).
    pub changes: broadcast::Sender<EventId>,
    /// The rules run on readings that a sensor sends in a sync session of
    /// its own (as on readings pushed over HTTP; never on relayed ones).
    pub sensor_rules: Option<Arc<SensorRules>>,
    /// What the sync port admits: connections per address, sessions per
    /// certificate key, the handshake deadline ([`HubNet::with_limits`];
    /// default [`Limits::HUB`]). `max_sessions` is the server's argument
    /// (`crate::server::serve`), not this one.
    pub limits: Limits,
}

impl std::fmt::Debug for HubNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubNet")
            .field("enrollment", &self.enrollment)
            .field("media", &self.media.as_ref().map(|m| m.dir().to_path_buf()))
            .field("checkpoint_every", &self.checkpoint_every)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HubNet {
    /// TLS configurations for `enrollment`, checking peers against
    /// `revocations` under `freshness`.
    pub fn new(
        enrollment: Enrollment,
        revocations: RevocationHandle,
        freshness: FreshnessPolicy,
    ) -> Result<HubNet, ServerError> {
        let server = sentinel_certs::server_config(&enrollment, &revocations, freshness)?;
        let client = sentinel_certs::client_config(&enrollment, &revocations, freshness)?;
        Ok(HubNet {
            // Sessions read the handle's entry revocations at every entry.
            trust: Arc::new(CaTrust::with_revocations(
                enrollment.ca.clone(),
                revocations.clone(),
            )),
            enrollment,
            revocations,
            server,
            client,
            media: None,
            own: None,
            checkpoint_every: None,
            relay: Arc::new(watch::channel(0u64).0),
            changes: broadcast::channel(CHANGES_BUFFER).0,
            sensor_rules: None,
            limits: Limits::HUB,
        })
    }

    /// [`HubNet::new`] with the newest revocation list the store holds and
    /// the hubs' revocation entries of its log; logs (info) that the
    /// database was restored from a backup, when it was
    /// ([`crate::backup`]).
    pub async fn for_store(
        enrollment: Enrollment,
        store: &PgStore,
        freshness: FreshnessPolicy,
    ) -> Result<HubNet, ServerError> {
        let revocations = match store.revocation_list().await? {
            Some(bytes) => RevocationHandle::from_signed(&bytes, &enrollment.ca)
                .map_err(|e| ServerError::Revocations(e.to_string()))?,
            None => RevocationHandle::empty(),
        };
        crate::revocations::load(store, &enrollment.ca, &revocations).await?;
        if let Some(record) = store.restored_from().await? {
            tracing::info!(
                restored_from = %String::from_utf8_lossy(&record),
                "this database was restored from a backup: nodes that synced since give back \
                 what it lost, and may report it as truncated until they have"
            );
        }
        HubNet::new(enrollment, revocations, freshness)
    }

    /// Admits connections within `limits` (but `max_sessions`, which is
    /// the server's argument).
    pub fn with_limits(mut self, limits: Limits) -> HubNet {
        self.limits = limits;
        self
    }

    /// Runs `rules` on the readings sensors send in sync sessions of their
    /// own ([`crate::sensors`]: only the receiver that takes a reading from
    /// its sensor evaluates it).
    pub fn with_sensor_rules(mut self, rules: Arc<SensorRules>) -> HubNet {
        self.sensor_rules = Some(rules);
        self
    }

    /// Pushes entries the hub itself writes (role grants, checkpoints) to
    /// live sessions as they are appended, and enforces the revocations it
    /// signs at once ([`OwnChain::enforce_revocations`]).
    pub fn with_own_chain(mut self, own: Arc<OwnChain>) -> HubNet {
        own.enforce_revocations(self.revocations.clone());
        self.own = Some(own);
        self
    }

    /// Signs a checkpoint of the heads into `own` every `every` while they
    /// move (see [`crate::checkpoint`]); live sessions push it at once.
    pub fn with_checkpoints(mut self, own: Arc<OwnChain>, every: Duration) -> HubNet {
        self.checkpoint_every = Some(every);
        self.with_own_chain(own)
    }

    /// Keeps media blobs in `media`: the sync port then also offers the
    /// media protocol, and the server exchanges blobs with nodes.
    pub fn with_media(mut self, media: MediaStore) -> HubNet {
        self.media = Some(Arc::new(media));
        self
    }

    /// Sensor pushes into `store`, trusted and revoked as this hub's
    /// sessions are, waking its projector and sessions. Must be called
    /// inside a multi-thread tokio runtime (the one the store's pool runs
    /// on).
    pub fn sensor_ingest(&self, store: PgStore) -> SensorIngest {
        SensorIngest::new(
            store,
            self.trust.clone(),
            self.revocations.clone(),
            self.relay.clone(),
        )
    }

    /// The events the projector writes from now on, as it writes them
    /// (an event may come again each time it changes).
    pub fn changes(&self) -> broadcast::Receiver<EventId> {
        self.changes.subscribe()
    }
}
