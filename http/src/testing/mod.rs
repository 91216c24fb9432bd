//! Test support (feature `testing`) for the node's and the hub's tests of
//! the one HTTP contract: calling a router in-process and reading its
//! answer, every error checked to be a problem ([`call`], [`send`],
//! [`open`], [`login`]) and what the public must never see in an event
//! ([`assert_redacted`]), and that bisecting boxes tells the public no
//! more of a place than its redacted cell ([`bisect`]); checking an OpenAPI document against the live
//! router ([`openapi`]); reading the live feed's Server-Sent Events over a
//! real socket ([`sse`]); what the API fixtures that
//! `scripts/fuzz-api` starts have in common ([`fixture`]); and running a
//! server's binary within a bound, so a `serve` that should have exited,
//! or never says where it listens, fails the test instead of hanging it
//! ([`output_within`], [`lines_within`]).
//!
//! Each server's tests keep their own data (route lists, accounts, seeded
//! events) and pass it in. What is here knows neither server, so a check
//! of the contract is written once and holds for both.
//!
//! Never does: open a store, or serve outside tests and fixtures (the
//! feature is enabled from the servers' dev-dependencies only).

// Test support: a failure here is a failed test, and panicking is how a
// test reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bisect;
pub mod fixture;
pub mod openapi;
pub mod sse;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::PROBLEM_JSON;

/// The password tests give their accounts (long enough for the rules of
/// `crate::people`).
pub const PASSWORD: &str = "a long enough password";

/// The most of an answer's body a test reads.
const MAX_BODY: usize = 128 << 20;

/// An answer: its status, headers and body (JSON; `Null` when it is not).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

/// A request of `method` to `uri`, with `token` as the bearer token and
/// `body` as JSON, if given.
pub fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    req.body(body).unwrap()
}

/// Sends `req` through `app` and reads the whole answer. Every error is a
/// problem (`application/problem+json`), and a client error says what was
/// wrong (`detail`), whichever server answers.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let what = format!("{} {}", req.method(), req.uri());
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON, "{what}");
    }
    let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_client_error() {
        assert!(body["detail"].is_string(), "{what}: {body}");
    }
    Reply {
        status,
        body,
        headers,
    }
}

/// `method uri` through `app`, as [`send`] sends it.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    send(app, request(method, uri, token, body.as_ref())).await
}

/// Sends `req` and reads the body only when it is an error: a `200` from
/// the feed is a stream that never ends.
pub async fn open(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    if status.is_success() {
        return Reply {
            status,
            body: Value::Null,
            headers,
        };
    }
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap(),
        headers,
    }
}

/// `POST /api/v1/login` as `name` with `password`: the answer, whatever it
/// is.
pub async fn try_login(app: &Router, name: &str, password: &str) -> Reply {
    call(
        app,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"name": name, "password": password})),
    )
    .await
}

/// What an event the public reads never holds (`docs/security.md` 3.3,
/// invariant 12): the people, notes, media, conflicts and history.
pub const PUBLIC_NEVER_SEES: [&str; 6] = [
    "assignee",
    "reported_by",
    "notes",
    "media",
    "conflicts",
    "history",
];

/// `event` (an event as JSON) holds nothing of [`PUBLIC_NEVER_SEES`].
#[track_caller]
pub fn assert_redacted(event: &Value) {
    for field in PUBLIC_NEVER_SEES {
        assert!(event.get(field).is_none(), "{field}: {event}");
    }
}

/// Signs `name` in with `password`; the bearer token.
pub async fn login(app: &Router, name: &str, password: &str) -> String {
    let r = try_login(app, name, password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

/// Runs `command` to its end, as [`Command::output`] does (no input, the
/// output captured), but waits at most `bound`: a child still running
/// then is killed and the test fails, naming `what`. For a command that
/// must exit (a `serve` refusing its configuration): one that serves
/// instead would otherwise hang the test for ever.
#[track_caller]
pub fn output_within(command: &mut Command, bound: Duration, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            bytes
        })
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {bound:?}, killed (it should have exited)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The lines of `from` (a child's output), read on a thread of their own;
/// [`Lines::next_line`] waits for the next one at most a bound.
pub fn lines_within(from: impl Read + Send + 'static) -> Lines {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Lines(rx)
}

/// Lines from [`lines_within`].
pub struct Lines(Receiver<String>);

impl Lines {
    /// The next line, waited for at most `bound`; the test fails naming
    /// `what` when none comes (or the output ends) by then.
    #[track_caller]
    pub fn next_line(&self, bound: Duration, what: &str) -> String {
        self.0
            .recv_timeout(bound)
            .unwrap_or_else(|e| panic!("{what}: no line within {bound:?} ({e})"))
    }
}
