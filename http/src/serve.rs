//! The one accept loop both servers serve their API with, plain or over
//! TLS ([`serve`]), so a slow or idle client cannot hold the server.
//!
//! axum's own `serve` sets no timeout and no bound; this loop sets, per
//! [`ServeOptions`]:
//!
//! - **a connection cap**: at most `max_connections` open at once. One
//!   more is answered at once — on plain HTTP a `503` problem
//!   (`Retry-After: 1`), over TLS a closed connection (answering would
//!   cost a handshake) — and counted in [`CONNECTIONS_REFUSED`].
//! - **a handshake timeout** (TLS): the handshake runs in the
//!   connection's own task, never in the loop, and ends at
//!   `handshake_timeout`.
//! - **a header timeout**: an HTTP/1.1 client has `header_timeout` to
//!   send a request's headers, counted from when the connection waits for
//!   them (so a keep-alive connection waiting for its next request is
//!   bounded by it too); then the connection is closed.
//! - **body timeouts**: a request body may pause at most `body_timeout`
//!   between two pieces, and must be whole within `body_deadline` of its
//!   headers. Past either, reading it fails; the routes answer `408`
//!   ([`crate::Problem::timeout`]) and the connection closes.
//! - **an idle timeout**: a connection (HTTP/1.1 or HTTP/2) with no
//!   request in flight for `idle_timeout` is closed gracefully. A request
//!   is in flight until its answer's body is sent, so a live feed is
//!   never idle.
//!
//! Each request carries `ConnectInfo<SocketAddr>` with the peer's address,
//! as `axum::serve` supplies it, for the rate limit and the request log
//! (`crate::ops::client_addr`). TLS offers ALPN `h2` and `http/1.1` as its
//! configuration says; plain connections speak HTTP/1.1 (or HTTP/2 with
//! prior knowledge). On shutdown the loop stops accepting, asks every
//! connection to finish (HTTP/1.1 closes after the request in flight,
//! HTTP/2 sends GOAWAY) and returns once they have: bound that wait from
//! outside, as a live feed stays open until its client leaves.
//!
//! Never does: route a request, or know which server it serves.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::timeout::{DeadlineBody, TimeoutBody};

/// Connections refused because [`ServeOptions::max_connections`] were
/// open.
pub const CONNECTIONS_REFUSED: &str = "sentinel_http_connections_refused_total";
/// Connections open now.
pub const CONNECTIONS_OPEN: &str = "sentinel_http_connections_open";

/// Longest a client may take to complete the TLS handshake, by default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest an HTTP/1.1 client may take to send a request's headers, by
/// default.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a request body may pause, by default.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a request body may take in all, by default (64 MiB of media
/// at about 250 KB/s).
pub const BODY_DEADLINE: Duration = Duration::from_secs(300);
/// Longest a connection may stay open with no request in flight, by
/// default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections open at once, by default.
pub const MAX_CONNECTIONS: usize = 1024;
/// Requests one HTTP/2 connection may have in flight at once.
pub const MAX_STREAMS: u32 = 100;

/// How long the answer to a refused connection may take to go out.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// The problem a plain connection over the cap is answered.
const BUSY: &str = "{\"type\":\"urn:sentinel:problem:unavailable\",\
\"title\":\"Service unavailable\",\"status\":503,\
\"detail\":\"too many connections are open; retry in a second\"}";

/// The bounds of [`serve`] (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_deadline: Duration,
    pub idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            body_deadline: BODY_DEADLINE,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` — over TLS with `tls`, plain HTTP without —
/// within `options`, until `shutdown` completes; then stops accepting and
/// returns once every open connection has finished (see the module
/// documentation). Errors on one connection end that connection only;
/// errors accepting (such as running out of file descriptors) are logged
/// and retried after a pause.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, client) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(CONNECTIONS_REFUSED).increment(1);
            tracing::debug!(%client, "refused a connection: {} open", options.max_connections);
            if acceptor.is_none() {
                tokio::spawn(refuse(tcp));
            }
            continue;
        };
        let connection = Connection {
            client,
            app: app.clone(),
            options,
            stopping: stopping.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
            match acceptor {
                None => connection.run(tcp).await,
                Some(acceptor) => {
                    match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(tls)) => connection.run(tls).await,
                        Ok(Err(e)) => tracing::debug!(%client, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                    }
                }
            }
            metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends.
    let _ = slots
        .acquire_many(options.max_connections.max(1) as u32)
        .await;
}

/// Tells a plain connection over the cap to come back later, and closes
/// it; bounded by [`REFUSAL_TIMEOUT`].
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{BUSY}",
            crate::PROBLEM_JSON,
            BUSY.len()
        );
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        // Read what the client sent, so closing does not reset the
        // connection before it has read the answer.
        let mut sink = [0u8; 4096];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Connection-level errors (the client gave up before we accepted) need no
/// pause; anything else (out of file descriptors) would spin, so wait.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!("accepting an HTTP connection failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection, before it is served.
struct Connection {
    client: SocketAddr,
    app: Router,
    options: ServeOptions,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves requests on `io` until the client leaves, a timeout ends the
    /// connection, or the server shuts down.
    async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (client, options) = (self.client, self.options);
        let activity = Arc::new(Activity::new());
        let app = self.app.clone();
        let tracked = activity.clone();
        let service = tower::service_fn(move |request: Request<Incoming>| {
            let in_flight = tracked.start();
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(client));
            let body = Body::new(DeadlineBody::new(
                options.body_deadline,
                TimeoutBody::new(options.body_timeout, body),
            ));
            let answer = app.clone().oneshot(Request::from_parts(parts, body));
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                }))
            }
        });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS);
        let connection =
            builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let mut connection = std::pin::pin!(connection);
        let mut closing = false;
        loop {
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%client, "HTTP connection ended: {e}");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = activity.idle_for(options.idle_timeout), if !closing => {
                    tracing::debug!(%client, "closing an idle HTTP connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A connection's requests in flight, and since when it has had none.
struct Activity {
    state: Mutex<(usize, Instant)>,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new((0, Instant::now())),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        // Two numbers, each update whole: a panic cannot leave them torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request starts; it is in flight until the guard is dropped.
    fn start(self: &Arc<Self>) -> InFlight {
        self.lock().0 += 1;
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Completes once the connection has had no request in flight for
    /// `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let (in_flight, since) = *self.lock();
            if in_flight > 0 {
                changed.await;
                continue;
            }
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// A request in flight (see [`Activity::start`]).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.0 = state.0.saturating_sub(1);
        if state.0 == 0 {
            state.1 = Instant::now();
        }
        drop(state);
        self.0.changed.notify_waiters();
    }
}

/// An answer's body, keeping its request in flight until it is sent (or
/// dropped).
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
