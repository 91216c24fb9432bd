//! Sync between field nodes over real QUIC on loopback, with real
//! certificates from the deployment CA and real SpatiaLite stores: two
//! nodes converge, entries travel through a node that meets both sides,
//! every kind of peer the transport must refuse is refused before
//! anything is stored, and a sync killed half-way (either side) resumes
//! without losing or resending what was committed.
//!
//! The handshake runs on the real clock (that is what `serve` does), so
//! certificates here are issued around the current time, not a fixed one.
//! Every wait is bounded: a hung session fails its test instead of the
//! suite. Each test prints its run time to stderr (`--nocapture`). The
//! enrolled nodes, `serve` and the bounded `sync` are
//! `sentinel_node::testing`'s; the CA and identities
//! `sentinel_certs::testing`'s.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sentinel_certs::testing::{deployment, issue, key, now_ms, DAY, YEAR};
use sentinel_certs::{
    Ca, CaCert, Enrollment, FreshnessPolicy, RevocationHandle, RevocationList, Revoked, ALPN,
};
use sentinel_node::net::{self, Net};
use sentinel_node::node::{self as node_mod, Node};
use sentinel_node::testing::{ev, eventually, new_event, sync, timed, Peer, Server, HANG};
use sentinel_schema::{DeviceRole, Point, SigningKey};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic;
use sentinel_sync::SyncStore;
use tempfile::TempDir;
use tokio::time::timeout;

/// Entries node A holds in the kill tests.
const N_BIG: u64 = 20_000;

mod admission;
mod background;
mod converge;
mod kill;
mod links;
mod receipts;
mod refusals;
mod revocations;
mod sensors;
mod settle;
