//! The node's HTTP API against a real SpatiaLite store, through the real
//! router (`tower::ServiceExt::oneshot`), with real accounts, argon2id
//! passwords and tokens, and roles from `role_grant` entries a hub signed
//! and the node applied (`Node::apply_remote`).

mod analysis;
mod clusters;
mod device_officer;
mod export;
mod feed;
mod front;
mod input;
mod logins;
mod matrix;
mod openapi;
mod ops;
mod public;
mod recovery;
mod sensor_rules;
mod sensors;
mod serve;
mod tiles;
mod tokens;

use std::sync::{Arc, Mutex};

use axum::body::Body as HttpBody;
use axum::http::{header, Request};
use axum::Router;
use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::{Ca, Enrollment};
use sentinel_http::people::hash_password;
use sentinel_http::testing;
use sentinel_node::http::{router, ApiState};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::{
    verify_all, Body, DeviceRole, Entry, EventEdit, EventId, Head, Hlc, NewEvent, PersonRole,
    Point, RoleGrant, SigningKey, Status,
};
use sentinel_sync::testing::key;
use sentinel_sync::SyncStore;
use serde_json::Value;
use tempfile::TempDir;

pub use sentinel_http::testing::{Reply, PASSWORD};

/// A minimal JPEG (by its magic bytes, which is all the node checks).
pub const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1];

/// A signer of entries with a certificate the node holds.
pub struct Signer {
    pub enrollment: Enrollment,
    head: Option<Head>,
}

pub struct Api {
    pub app: Router,
    pub node: Arc<Mutex<Node>>,
    pub hub: std::cell::RefCell<Signer>,
    pub ca: Ca,
    _dir: TempDir,
}

impl Api {
    /// An enrolled node that knows one hub's certificate.
    pub fn start() -> Api {
        let t = now_ms();
        let ca = Ca::create("http test CA", t - 2 * DAY, t + 400 * DAY, key(901)).unwrap();
        let dir = TempDir::new().unwrap();
        Node::init(dir.path(), SigningKey::from_bytes(&[7; 32])).unwrap();
        let e = ca
            .enroll(
                DeviceRole::Node,
                "node-1",
                key(902),
                t - DAY,
                t + 365 * DAY,
                t,
            )
            .unwrap();
        enroll(dir.path(), &e).unwrap();
        let node = Arc::new(Mutex::new(Node::open(dir.path()).unwrap()));
        let hub = Api::signer_with(&ca, &node, DeviceRole::Hub, "hub-1", 903);
        let app = router(ApiState::new(node.clone()).unwrap());
        Api {
            app,
            node,
            hub: std::cell::RefCell::new(hub),
            ca,
            _dir: dir,
        }
    }

    /// The node's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    fn signer_with(
        ca: &Ca,
        node: &Arc<Mutex<Node>>,
        role: DeviceRole,
        name: &str,
        seed: u64,
    ) -> Signer {
        let t = now_ms();
        let e = ca
            .enroll(role, name, key(seed), t - DAY, t + 365 * DAY, t)
            .unwrap();
        node.lock()
            .unwrap()
            .store_mut()
            .add_certificates(vec![(e.identity.author, e.cert_der.clone())])
            .unwrap();
        Signer {
            enrollment: e,
            head: None,
        }
    }

    /// Another signer (any device role) whose certificate the node holds.
    pub fn signer(&self, role: DeviceRole, name: &str, seed: u64) -> Signer {
        Api::signer_with(&self.ca, &self.node, role, name, seed)
    }

    /// `signer` grants `person` the `role`, and the node applies it.
    pub fn grant_by(&self, signer: &mut Signer, person: &str, role: PersonRole) {
        self.apply_by(
            signer,
            Body::RoleGrant(RoleGrant {
                person: person.into(),
                role,
            }),
        );
    }

    /// `signer` writes an entry with `body` (actor `boss`), and the node
    /// applies it as it applies what sync brings.
    pub fn apply_by(&self, signer: &mut Signer, body: Body) {
        let e = &signer.enrollment;
        let entry = Entry {
            author: e.identity.author,
            seq: signer.head.map_or(1, |h| h.seq + 1),
            prev: signer.head.map(|h| h.id),
            hlc: Hlc::new(now_ms(), 0),
            actor: Some("boss".into()),
            body,
        };
        let signed = entry.sign(&e.key).unwrap();
        signer.head = Some(Head {
            seq: signed.seq(),
            id: signed.id(),
        });
        let (good, bad) = verify_all(vec![signed]);
        assert!(bad.is_empty());
        self.node
            .lock()
            .unwrap()
            .apply_remote(good, now_ms())
            .unwrap();
    }

    /// The hub grants `person` the `role`.
    pub fn grant(&self, person: &str, role: PersonRole) {
        let mut hub = self.hub.borrow_mut();
        self.grant_by(&mut hub, person, role);
    }

    /// An account, with a role granted by the hub (or none).
    pub fn account(&self, name: &str, role: Option<PersonRole>) {
        let hash = hash_password(PASSWORD).unwrap();
        assert!(self
            .node
            .lock()
            .unwrap()
            .store()
            .create_account(name, &hash, now_ms())
            .unwrap());
        if let Some(role) = role {
            self.grant(name, role);
        }
    }

    /// An event `reporter` reported (through the node, as the CLI does).
    pub fn event(&self, reporter: &str) -> EventId {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&now_ms().to_be_bytes());
        id[8..].copy_from_slice(&rand_id());
        let event = EventId(id);
        let new = NewEvent {
            title: "Flooded underpass".into(),
            description: "water up to the knees".into(),
            category: "flood".into(),
            severity: 3,
            location: Point::new(13.404954, 52.520008).unwrap(),
            reported_ms: now_ms(),
        };
        self.node
            .lock()
            .unwrap()
            .report(&new, event, Some(reporter), now_ms())
            .unwrap();
        event
    }

    /// An edit by `actor`, through the node.
    pub fn edit(&self, event: EventId, actor: &str, edit: EventEdit) {
        self.node
            .lock()
            .unwrap()
            .edit(event, &edit, Some(actor), now_ms())
            .unwrap();
    }

    /// An event reported by `reporter`, assigned to `assignee` and moved
    /// on to `status`.
    pub fn event_in(&self, reporter: &str, assignee: &str, status: Status) -> EventId {
        let event = self.event(reporter);
        self.edit(event, "boss", EventEdit::Assign(assignee.into()));
        let path: &[Status] = match status {
            Status::Reported | Status::Assigned => &[],
            Status::InProgress => &[Status::InProgress],
            Status::Resolved => &[Status::InProgress, Status::Resolved],
            Status::Closed => &[Status::InProgress, Status::Resolved, Status::Closed],
        };
        for s in path {
            self.edit(event, assignee, EventEdit::Status(*s));
        }
        event
    }

    pub fn entries(&self) -> i64 {
        self.node
            .lock()
            .unwrap()
            .store()
            .conn()
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap()
    }

    /// Sends `req` through the router: every error is a problem, every
    /// client error says what was wrong (`sentinel_http::testing::send`).
    pub async fn send(&self, req: Request<HttpBody>) -> Reply {
        testing::send(&self.app, req).await
    }

    /// Sends `req` and reads the body only when it is an error: a `200`
    /// from the feed is a stream that never ends.
    pub async fn open(&self, req: Request<HttpBody>) -> Reply {
        testing::open(&self.app, req).await
    }

    /// `GET uri` as [`Api::open`] sends it.
    pub async fn open_get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.open(testing::request("GET", uri, token, None)).await
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        testing::call(&self.app, method, uri, token, body).await
    }

    pub async fn upload(&self, event: &str, token: Option<&str>, bytes: &[u8]) -> Reply {
        let (content_type, body) = multipart(&[("file", Some("photo.jpg"), bytes)]);
        let mut req = Request::post(format!("/api/v1/events/{event}/media"))
            .header(header::CONTENT_TYPE, content_type);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(HttpBody::from(body)).unwrap()).await
    }

    pub async fn login(&self, name: &str) -> String {
        testing::login(&self.app, name, PASSWORD).await
    }
}

/// A `multipart/form-data` body of `(name, file name, bytes)` parts.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sentinel-test-boundary";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn rand_id() -> [u8; 8] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed).to_be_bytes()
}

/// One HTTP/1.1 request over a real socket (`Connection: close`), for the
/// tests that serve the API on a port: the status, the raw header block
/// and the body (de-chunked when it was streamed).
pub async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.map(|b| b.to_string());
    let typed = body.as_ref().map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n{auth}{typed}\r\n{}",
        body.unwrap_or_default()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

/// The body of a `Transfer-Encoding: chunked` answer (a streamed one, as
/// the export is): each chunk is its size in hex, CRLF, the bytes, CRLF.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}
