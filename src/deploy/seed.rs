//! Realistic data for a deployment people look at: officers' reports
//! with photos on their nodes, synced to the hub; an assignment by the
//! admin; a river gauge pushing signed readings to the hub, one of which
//! crosses a rule and raises an event.
//!
//! Never does: write a store directly — everything goes through the
//! binaries' APIs and sync, as devices and people do.

use anyhow::{Context, Result};
use rand_core::OsRng;
use sentinel_schema::{
    Body, Clock, DeviceRole, Entry, EntryId, Point, ReadingValue, SensorReading, SignedEntry,
    SigningKey,
};
use serde_json::json;

use super::client::Api;
use super::{now_ms, Deployment, DAY_MS};

/// The photo every demo report carries (a drawn flooded street).
pub const PHOTO: &[u8] = include_bytes!("../../examples/demo/photo.png");

/// The hub's demo rule: the river gauge at 3.5 m or more raises an event.
pub const RULES: &str = r#"
window_s = 21600
[[rule]]
id = "river-high"
severity = 4
kind = "water_gauge"
value = "level"
comparison = ">="
threshold = 3.5
unit = "m"
"#;

/// One report: title, category, severity, lon, lat, description.
type Report = (&'static str, &'static str, u8, f64, f64, &'static str);

/// What each officer reports.
const REPORTS: &[&[Report]] = &[
    &[
        (
            "Flooded underpass on Invalidenstraße",
            "flood",
            4,
            13.3775,
            52.5286,
            "Water about 40 cm deep; two cars stuck. Police closing the road.",
        ),
        (
            "Fallen tree blocks cycle path",
            "obstruction",
            2,
            13.3621,
            52.5145,
            "Large branch across the path in the Tiergarten, no one hurt.",
        ),
        (
            "Gas smell near school",
            "hazard",
            5,
            13.4050,
            52.5200,
            "Strong smell at the east entrance; school staff informed.",
        ),
    ],
    &[
        (
            "Power line down after storm",
            "power",
            4,
            13.4531,
            52.5069,
            "Line lying across the pavement; area taped off, utility called.",
        ),
        (
            "Cellar flooding, elderly resident",
            "flood",
            3,
            13.4244,
            52.4870,
            "Resident needs help moving belongings; pumps requested.",
        ),
        (
            "Road surface collapsed",
            "infrastructure",
            3,
            13.3890,
            52.4985,
            "Hole of about 1 m across in the right lane.",
        ),
    ],
];

/// What seeding made, for the demo to print.
pub struct Seeded {
    pub events: usize,
    pub readings: usize,
}

/// Seeds the deployment: reports on every node, synced to the hub, an
/// assignment made on the hub and synced back, and a gauge's readings.
pub async fn seed(d: &Deployment) -> Result<Seeded> {
    let mut events = 0;
    let mut first = None;
    for (i, node) in d.nodes.iter().enumerate() {
        let api = Api::sign_in(node.http, &node.officer.name, &node.officer.password).await?;
        for (title, category, severity, lon, lat, description) in REPORTS[i % REPORTS.len()] {
            let id = api
                .report(title, category, *severity, *lon, *lat, description)
                .await?;
            if events % 2 == 0 {
                api.photo(&id, "street.png", PHOTO.to_vec(), "image/png")
                    .await?;
            }
            first.get_or_insert((i, id));
            events += 1;
        }
        if d.hub.is_some() {
            api.sync_now()
                .await
                .with_context(|| format!("{} syncing", node.name))?;
        }
    }
    let mut readings = 0;
    if let Some(hub) = &d.hub {
        let admin = hub
            .accounts
            .iter()
            .find(|a| a.role == "admin")
            .context("no admin account")?;
        let api = Api::sign_in(hub.http, &admin.name, &admin.password).await?;
        if let Some((i, id)) = &first {
            let node = &d.nodes[*i];
            api.post(
                &format!("/api/v1/events/{id}/assign"),
                json!({"assignee": node.officer.name}),
            )
            .await?;
            let officer =
                Api::sign_in(node.http, &node.officer.name, &node.officer.password).await?;
            officer.sync_now().await?;
            // Pushed live (background sync) or pulled by the round: wait
            // until the node shows the assignment.
            let started = std::time::Instant::now();
            loop {
                let e = officer.get(&format!("/api/v1/events/{id}"), &[]).await?;
                if e["assignee"] == node.officer.name.as_str() {
                    break;
                }
                if started.elapsed() > std::time::Duration::from_secs(60) {
                    anyhow::bail!("the assignment never reached {}: {e}", node.name);
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        readings = push_gauge(d, hub.http).await?;
    }
    Ok(Seeded { events, readings })
}

/// A river gauge, enrolled by the deployment's CA, pushes six hours of
/// readings (every ten minutes) to the hub; the river rises past 3.5 m.
pub async fn push_gauge(d: &Deployment, hub: std::net::SocketAddr) -> Result<usize> {
    let now = now_ms();
    let identity = d.ca.enroll(
        DeviceRole::Sensor,
        "gauge-spree-1",
        SigningKey::generate(&mut OsRng),
        now - DAY_MS,
        now + 30 * DAY_MS,
        now,
    )?;
    let mut clock = Clock::resume(Default::default());
    let mut prev: Option<EntryId> = None;
    let mut entries: Vec<SignedEntry> = Vec::new();
    let n = 36u64;
    let start = now - n * 10 * 60 * 1000;
    for i in 0..n {
        let level = 2.1 + 1.6 * (i as f64 / (n - 1) as f64) + 0.05 * ((i as f64) / 2.0).sin();
        let entry = Entry {
            author: identity.identity.author,
            seq: i + 1,
            prev,
            hlc: clock.tick(now)?,
            actor: None,
            body: Body::SensorReading(SensorReading {
                kind: "water_gauge".into(),
                values: vec![
                    ReadingValue {
                        name: "level".into(),
                        value: (level * 100.0).round() / 100.0,
                        unit: "m".into(),
                    },
                    ReadingValue {
                        name: "battery".into(),
                        value: 3.7,
                        unit: "V".into(),
                    },
                ],
                location: Some(Point::new(13.4005, 52.5170)?),
                measured_ms: start + i * 10 * 60 * 1000,
            }),
        };
        let signed = entry.sign(&identity.key)?;
        prev = Some(signed.id());
        entries.push(signed);
    }
    let body = sentinel_sync::push::encode(Some(&identity.cert_der), &entries);
    let r = reqwest::Client::new()
        .post(format!("http://{hub}/api/v1/sensors/entries"))
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .await?;
    let status = r.status();
    if !status.is_success() {
        anyhow::bail!(
            "the hub refused the gauge's readings: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(entries.len())
}
