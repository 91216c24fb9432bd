//! The node as the shared routes' store (`sentinel_http::api::Backend`):
//! sign-in, search, one event, sensor pushes and readings, readiness.
//!
//! The node is synchronous code behind one lock, so every question runs on
//! a blocking thread under that lock ([`on_node`]); what needs no lock
//! (password hashes, certificate names) stays off it.
//!
//! **Pushes.** A sensor push is checked up to its chain (the signatures
//! above all) off the lock, which is taken only to read the sensor's
//! certificate and head; then the chain and the store under it. Concurrent
//! sensors verify in parallel and serialise only on the apply.
//!
//! Never does: SQL (the store answers), or shape JSON (the shared routes do).

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use axum::body::Bytes;
use sentinel_certs::CaCert;
use sentinel_http::api::{Backend, PasswordRecord, PushRefusal, RuleTrigger};
use sentinel_http::clock::Clock;
use sentinel_http::people::lockout_ms;
use sentinel_http::Problem;
use sentinel_schema::query::{
    ClusterQuery, Clusters, EventPage, EventRecord, EventSearch, ReadingBucket, ReadingCursor,
    ReadingFilter, ReadingRow, SensorSeen,
};
use sentinel_schema::{AuthorId, EventId, PersonRole};
use sentinel_sync::push;
use serde_json::Value;

use super::blocking::on_node;
use super::feed::Follower;
use crate::node::Node;
use crate::roles::role_of;
use crate::sensors::Ingest;
use crate::store::migrations::SCHEMA_VERSION;

/// The node's answers to the shared routes.
pub struct NodeBackend {
    node: Arc<Mutex<Node>>,
    /// The deployment CA that vouches for the hubs whose role grants
    /// count and for sensors' names; `None` on a node not enrolled.
    ca: Option<Arc<CaCert>>,
    /// Checks sensor pushes; `None` on a node that is not enrolled.
    ingest: Option<Ingest>,
    clock: Clock,
    /// Woken after a push, so its events reach the feed at once.
    follower: Follower,
}

impl NodeBackend {
    pub fn new(
        node: Arc<Mutex<Node>>,
        ca: Option<Arc<CaCert>>,
        ingest: Option<Ingest>,
        clock: Clock,
        follower: Follower,
    ) -> NodeBackend {
        NodeBackend {
            node,
            ca,
            ingest,
            clock,
            follower,
        }
    }
}

#[async_trait]
impl Backend for NodeBackend {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn ready(&self) -> Result<(), Problem> {
        let version = on_node(&self.node, |node| Ok(node.store().schema_version()?)).await?;
        if version == SCHEMA_VERSION {
            Ok(())
        } else {
            Err(Problem::not_ready(format!(
                "the store's schema is version {version}, this build needs {SCHEMA_VERSION}"
            )))
        }
    }

    async fn signed_in(
        &self,
        token: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<(String, PersonRole)>, Problem> {
        let ca = self.ca.clone();
        on_node(&self.node, move |node| {
            let store = node.store();
            let Some(name) = store.token_account(&token, now_ms)? else {
                return Ok(None);
            };
            let role = role_of(store, ca.as_deref(), &name)?;
            Ok(Some((name, role)))
        })
        .await
    }

    async fn password(&self, name: &str) -> Result<Option<PasswordRecord>, Problem> {
        let name = name.to_owned();
        on_node(&self.node, move |node| {
            Ok(node.store().login_record(&name)?.map(|r| PasswordRecord {
                hash: r.hash,
                disabled: r.disabled,
                failures: r.failures,
                locked_until_ms: r.locked_until_ms,
            }))
        })
        .await
    }

    async fn open_session(
        &self,
        token: [u8; 32],
        name: &str,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<PersonRole, Problem> {
        let (name, ca) = (name.to_owned(), self.ca.clone());
        on_node(&self.node, move |node| {
            let store = node.store();
            store.insert_token(&token, &name, now_ms, expires_ms)?;
            Ok(role_of(store, ca.as_deref(), &name)?)
        })
        .await
    }

    async fn close_session(&self, token: [u8; 32]) -> Result<(), Problem> {
        on_node(&self.node, move |node| {
            Ok(node.store().revoke_token(&token)?)
        })
        .await
    }

    async fn login_failed(&self, name: &str, now_ms: u64) -> Result<(), Problem> {
        let name = name.to_owned();
        on_node(&self.node, move |node| {
            node.store_mut().login_failed(&name, now_ms, lockout_ms)?;
            Ok(())
        })
        .await
    }

    async fn login_succeeded(&self, name: &str) -> Result<(), Problem> {
        let name = name.to_owned();
        on_node(&self.node, move |node| {
            Ok(node.store().login_succeeded(&name)?)
        })
        .await
    }

    async fn set_password(
        &self,
        name: &str,
        hash: String,
        keep: [u8; 32],
    ) -> Result<bool, Problem> {
        let name = name.to_owned();
        on_node(&self.node, move |node| {
            Ok(node.store_mut().set_password(&name, &hash, Some(&keep))?)
        })
        .await
    }

    async fn search(&self, search: EventSearch) -> Result<EventPage, Problem> {
        on_node(&self.node, move |node| Ok(node.store().search(&search)?)).await
    }

    async fn clusters(&self, query: ClusterQuery) -> Result<Clusters, Problem> {
        on_node(&self.node, move |node| Ok(node.store().clusters(&query)?)).await
    }

    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, Problem> {
        on_node(&self.node, move |node| Ok(node.store().event_record(id)?)).await
    }

    async fn push(&self, body: Bytes, now_ms: u64) -> Result<Value, PushRefusal> {
        let Some(ingest) = self.ingest.clone() else {
            return Err(PushRefusal {
                status: 503,
                code: "store_failed",
                detail: "this node is not enrolled, so it cannot check sensors' certificates"
                    .into(),
                index: None,
                seqs: None,
            });
        };
        let node = self.node.clone();
        let verifier = ingest.clone();
        let verified = tokio::task::spawn_blocking(move || {
            verifier.verify(&body, now_ms, |author, certificate| {
                // A read: a poisoned lock fails the apply below, not this.
                let node = node.lock().unwrap_or_else(PoisonError::into_inner);
                push::stored(&*node, author, certificate)
            })
        })
        .await;
        let verified = match verified {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(PushRefusal::from(&e)),
            Err(e) => return Err(PushRefusal::store_failed(&e)),
        };
        let applied = on_node(&self.node, move |node| {
            Ok(ingest.apply(node, verified, now_ms))
        })
        .await;
        self.follower.poke();
        match applied {
            Ok(Ok(ingested)) => {
                serde_json::to_value(&ingested.report).map_err(|e| PushRefusal::store_failed(&e))
            }
            Ok(Err(e)) => Err(PushRefusal::from(&e)),
            Err(p) => Err(PushRefusal::store_failed(&p.detail)),
        }
    }

    async fn readings(
        &self,
        filter: ReadingFilter,
        after: Option<ReadingCursor>,
        limit: usize,
    ) -> Result<Vec<ReadingRow>, Problem> {
        on_node(&self.node, move |node| {
            // Pushed readings reach the views within 250 ms; a query sees
            // them at once.
            node.catch_up_views()?;
            Ok(node.store().readings(&filter, after, limit)?)
        })
        .await
    }

    async fn reading_buckets(
        &self,
        filter: ReadingFilter,
        bucket_ms: u64,
        max_buckets: u64,
    ) -> Result<Option<Vec<ReadingBucket>>, Problem> {
        on_node(&self.node, move |node| {
            node.catch_up_views()?;
            Ok(node
                .store()
                .reading_buckets(&filter, bucket_ms, max_buckets)?)
        })
        .await
    }

    async fn sensors(&self) -> Result<Vec<(SensorSeen, Option<String>)>, Problem> {
        let seen = on_node(&self.node, move |node| {
            node.catch_up_views()?;
            Ok(node.store().sensors_seen()?)
        })
        .await?;
        Ok(seen
            .into_iter()
            .map(|s| {
                let name = match (&s.certificate_der, &self.ca) {
                    (Some(der), Some(ca)) => sentinel_certs::verify_identity(der, ca)
                        .ok()
                        .filter(|id| id.author == s.sensor)
                        .map(|id| id.name),
                    _ => None,
                };
                (s, name)
            })
            .collect())
    }

    async fn rule_triggers(
        &self,
        sensor: Option<AuthorId>,
        limit: usize,
    ) -> Result<Vec<RuleTrigger>, Problem> {
        let rows = on_node(&self.node, move |node| {
            Ok(node.store().rule_triggers(sensor.as_ref(), limit)?)
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|t| RuleTrigger {
                sensor: t.sensor,
                rule: t.rule,
                event: t.event,
                entry: t.entry,
                reading: t.reading,
                measured_ms: t.measured_ms,
                raised_ms: t.raised_ms,
            })
            .collect())
    }
}
