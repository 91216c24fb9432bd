//! What the workspace's command-line benchmarks share: the scale knob,
//! medians, the load average, and the goal rows they append for
//! `scripts/bench` to render into `docs/benchmarks.md`.

#![allow(dead_code)]

use std::io::Write;

/// `SENTINEL_BENCH_SCALE` (default 1.0: the sizes of the goals).
pub fn scale() -> f64 {
    std::env::var("SENTINEL_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` says them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One measured row of the goals table (`scripts/bench`).
#[derive(serde::Serialize)]
pub struct Row {
    row: String,
    figure: String,
    value: f64,
    unit: String,
    goal: String,
    met: bool,
    command: String,
    load: String,
    date: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
}

impl Row {
    pub fn new(row: &str, figure: String, value: f64, unit: &str, goal: &str, met: bool) -> Row {
        Row {
            row: row.into(),
            figure,
            value,
            unit: unit.into(),
            goal: goal.into(),
            met,
            command: String::new(),
            load: String::new(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            note: String::new(),
        }
    }

    /// The load averages when the measurement started and ended.
    pub fn load(mut self, start: &str, end: &str) -> Row {
        self.load = format!("{start} → {end}");
        self
    }

    pub fn command(mut self, c: &str) -> Row {
        self.command = c.into();
        self
    }

    pub fn note(mut self, n: &str) -> Row {
        self.note = n.into();
        self
    }

    /// Appends the row to `SENTINEL_BENCH_OUT`, when set.
    pub fn emit(&self) -> anyhow::Result<()> {
        let Ok(path) = std::env::var("SENTINEL_BENCH_OUT") else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{}", serde_json::to_string(self)?)?;
        Ok(())
    }
}
