//! What the node's and the hub's API fixtures (`examples/api_fixture.rs`
//! of each) share: the six events both seed ([`SEEDS`]) and how a fixture
//! serves its API and tells `scripts/fuzz-api` where it is ([`serve`]).
//!
//! How a server stores the seeded events and its accounts is its own
//! (signed entries applied to the hub's log; reports on the node).

use std::net::SocketAddr;

use axum::Router;
use sentinel_schema::{EventId, NewEvent, Point, PointError, Status};

/// The password the fixtures give their accounts.
pub const PASSWORD: &str = "fixture password, long enough";

const DAY: u64 = 24 * 3600 * 1000;

/// One event a fixture seeds: what is reported, and the statuses it is
/// then moved through (after being assigned, when there are any).
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub title: &'static str,
    pub lon: f64,
    pub lat: f64,
    pub severity: u8,
    pub steps: &'static [Status],
}

/// Six events in every status, two of them across the antimeridian. The
/// first is the OpenAPI documents' example event.
pub const SEEDS: [Seed; 6] = [
    Seed {
        title: "Flooded underpass",
        lon: 13.405,
        lat: 52.52,
        severity: 3,
        steps: &[],
    },
    Seed {
        title: "Burning warehouse",
        lon: 13.41,
        lat: 52.53,
        severity: 5,
        steps: &[Status::InProgress],
    },
    Seed {
        title: "Fallen tree",
        lon: 2.35,
        lat: 48.85,
        severity: 1,
        steps: &[Status::InProgress, Status::Resolved],
    },
    Seed {
        title: "Closed road",
        lon: 2.36,
        lat: 48.86,
        severity: 2,
        steps: &[Status::InProgress, Status::Resolved, Status::Closed],
    },
    Seed {
        title: "Pacific storm",
        lon: 179.5,
        lat: -17.0,
        severity: 4,
        steps: &[],
    },
    Seed {
        title: "Bridge fire",
        lon: -179.5,
        lat: -16.5,
        severity: 4,
        steps: &[Status::InProgress],
    },
];

impl Seed {
    /// The id of the `n`th seed (from 0): its byte `n + 1`, sixteen times.
    pub fn id(n: usize) -> EventId {
        EventId([n as u8 + 1; 16])
    }

    /// When the `n`th seed was reported: a day before `now_ms`, a minute
    /// apart.
    pub fn reported_ms(n: usize, now_ms: u64) -> u64 {
        now_ms - DAY + n as u64 * 60_000
    }

    /// The report, as reported at `reported_ms`.
    pub fn new_event(&self, reported_ms: u64) -> Result<NewEvent, PointError> {
        Ok(NewEvent {
            title: self.title.into(),
            description: "seeded by the API fixture".into(),
            category: if self.severity >= 4 { "fire" } else { "flood" }.into(),
            severity: self.severity,
            location: Point::new(self.lon, self.lat)?,
            reported_ms,
        })
    }
}

/// Serves `app` on 127.0.0.1 at a free port and prints, one per line, what
/// `scripts/fuzz-api` reads:
///
/// ```text
/// URL http://127.0.0.1:PORT
/// ADMIN_TOKEN …
/// PUBLIC_TOKEN …
/// EVENT 32-hex-digit id of a seeded event (one line each)
/// READY
/// ```
///
/// Then serves until standard input closes (or Ctrl-C).
pub async fn serve(
    app: Router,
    admin_token: &str,
    public_token: &str,
    events: &[EventId],
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("URL http://{addr}");
    println!("ADMIN_TOKEN {admin_token}");
    println!("PUBLIC_TOKEN {public_token}");
    for e in events {
        println!("EVENT {}", e.to_hex());
    }
    println!("READY");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    tokio::select! {
        r = served => r?,
        _ = stdin_closed() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Resolves when standard input reaches its end.
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
}
