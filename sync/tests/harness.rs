//! The harness of the session tests: named keys, scenarios (two stores
//! and a link), and the one `check` helper that runs a scenario on
//! virtual time and compares its rendered outcome (states, events, frames
//! each way) with the expected text.

use std::collections::BTreeMap;
use std::sync::Arc;

use sentinel_schema::{author_of, AuthorId, DeviceRole, SignedEntry, SigningKey};
use sentinel_sync::compress;
use sentinel_sync::message::{self, FrameEncodings, Message};
use sentinel_sync::testing::{chain, key, media, Pair, Peer, TestCa, Transmitted};
use sentinel_sync::{MemoryStore, SessionConfig, SessionEvent, SyncStore};

pub(crate) fn ca() -> TestCa {
    TestCa::new(42)
}

pub(crate) fn ann() -> SigningKey {
    key(1)
}
pub(crate) fn ben() -> SigningKey {
    key(2)
}
pub(crate) fn gauge() -> SigningKey {
    key(3)
}
pub(crate) fn cid() -> SigningKey {
    key(4)
}

/// One side of a scenario: its role and what its store holds.
pub(crate) struct Side {
    /// The role of this side's certificate: the other side's session is
    /// told it, as a driver would after the TLS handshake
    /// (`SessionConfig::peer_role`).
    pub(crate) role: DeviceRole,
    pub(crate) store: MemoryStore,
    /// This side's own author id: the other side's session is told it, as
    /// a driver would after the TLS handshake (`SessionConfig::peer`).
    pub(crate) own: Option<AuthorId>,
    /// The role this side's Hello claims, when not its certificate's.
    pub(crate) claims: Option<DeviceRole>,
    /// The frame encodings this side announces, when not the default's.
    pub(crate) encodings: Option<FrameEncodings>,
}

impl Side {
    pub(crate) fn new(role: DeviceRole, own: &SigningKey) -> Side {
        let mut store = MemoryStore::new();
        store
            .add_certificates(vec![(
                author_of(own),
                ca().certificate(author_of(own), role),
            )])
            .unwrap();
        Side {
            role,
            store,
            own: Some(author_of(own)),
            claims: None,
            encodings: None,
        }
    }

    pub(crate) fn node(own: &SigningKey) -> Side {
        Side::new(DeviceRole::Node, own)
    }

    /// This side's Hello claims `role`, whatever its certificate says.
    pub(crate) fn claiming(mut self, role: DeviceRole) -> Side {
        self.claims = Some(role);
        self
    }

    /// This side announces (and accepts) `encodings` in its Hello.
    pub(crate) fn announcing(mut self, encodings: FrameEncodings) -> Side {
        self.encodings = Some(encodings);
        self
    }

    pub(crate) fn holding(mut self, entries: &[SignedEntry]) -> Side {
        for e in entries {
            self.store.append_local(e.clone()).unwrap();
        }
        self
    }

    pub(crate) fn knowing(mut self, author: &SigningKey, role: DeviceRole) -> Side {
        let a = author_of(author);
        self.store
            .add_certificates(vec![(a, ca().certificate(a, role))])
            .unwrap();
        self
    }

    pub(crate) fn revoking(mut self, number: u64, revoked: &[(AuthorId, u64)]) -> Side {
        let list: BTreeMap<AuthorId, u64> = revoked.iter().copied().collect();
        self.store
            .set_revocation_list(ca().revocation_list(number, &list))
            .unwrap();
        self
    }
}

pub(crate) type Link = Box<dyn FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>>>;

pub(crate) struct Scenario {
    a: Side,
    b: Side,
    batch: usize,
    in_flight: usize,
    link: Option<Link>,
    /// Each session is told its own author (`SessionConfig::own`).
    own_first: bool,
}

pub(crate) fn scenario(a: Side, b: Side) -> Scenario {
    Scenario {
        a,
        b,
        batch: 512,
        in_flight: 4,
        link: None,
        own_first: false,
    }
}

impl Scenario {
    pub(crate) fn batch(mut self, n: usize) -> Scenario {
        self.batch = n;
        self
    }

    /// Each session streams its own author's entries first.
    pub(crate) fn own_first(mut self) -> Scenario {
        self.own_first = true;
        self
    }

    pub(crate) fn link(
        mut self,
        f: impl FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>> + 'static,
    ) -> Scenario {
        self.link = Some(Box::new(f));
        self
    }
}

/// A session of `role` (its Hello's), talking to a node (as its
/// certificate says) unless `peer_role` is changed.
pub(crate) fn config(role: DeviceRole, batch: usize, in_flight: usize) -> SessionConfig {
    let mut c = SessionConfig::new(role, Arc::new(ca().anchor()));
    c.max_batch_entries = batch;
    c.max_in_flight = in_flight;
    c.idle_timeout_ms = 10_000;
    c.peer_role = Some(DeviceRole::Node);
    c
}

pub(crate) type Outcome = Pair<MemoryStore, MemoryStore>;

pub(crate) fn run(s: Scenario) -> Outcome {
    let mut config_a = config(s.a.claims.unwrap_or(s.a.role), s.batch, s.in_flight);
    config_a.peer = s.b.own;
    config_a.peer_role = Some(s.b.role);
    let mut config_b = config(s.b.claims.unwrap_or(s.b.role), s.batch, s.in_flight);
    config_b.peer = s.a.own;
    config_b.peer_role = Some(s.a.role);
    if let Some(e) = s.a.encodings {
        config_a.frame_encodings = e;
    }
    if let Some(e) = s.b.encodings {
        config_b.frame_encodings = e;
    }
    if s.own_first {
        config_a.own = s.a.own;
        config_b.own = s.b.own;
    }
    let a = Peer::new(s.a.store, config_a);
    let b = Peer::new(s.b.store, config_b);
    let mut pair = Pair::new(a, b);
    pair.start().unwrap();
    match s.link {
        Some(link) => pair.drive_with(link).unwrap(),
        None => pair.drive().unwrap(),
    }
    // Whoever still waits for a frame gives up after the idle timeout.
    pair.advance(10_000);
    pair.drive().unwrap();
    pair
}

/// Runs the scenario and compares the rendered outcome with `expect`.
pub(crate) fn check(s: Scenario, expect: &str) -> Outcome {
    let pair = run(s);
    let got = render(&pair);
    let want: Vec<&str> = expect.trim().lines().map(str::trim).collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        got_lines,
        want,
        "\n--- got:\n{got}\n--- expected:\n{}\n",
        want.join("\n")
    );
    pair
}

pub(crate) fn render(pair: &Outcome) -> String {
    let side = |name: &str, p: &Peer<MemoryStore>| {
        let events = runs(p.events.iter().filter_map(render_event));
        format!(
            "{name}: {} {} entries | {events}",
            p.session.state_name(),
            p.store.n_entries(),
        )
    };
    let frames = |from_a: bool| {
        runs(
            pair.sent
                .iter()
                .filter(|t| t.from_a == from_a)
                .map(|t| t.name.to_string()),
        )
    };
    format!(
        "{}\n{}\na>b: {}\nb>a: {}",
        side("a", &pair.a),
        side("b", &pair.b),
        frames(true),
        frames(false)
    )
}

/// Items joined by spaces, repeats written once as `itemxN`.
pub(crate) fn runs(items: impl Iterator<Item = String>) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some((last, n)) if *last == item => *n += 1,
            _ => out.push((item, 1)),
        }
    }
    out.iter()
        .map(|(item, n)| {
            if *n == 1 {
                item.clone()
            } else {
                format!("{item}x{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn render_event(e: &SessionEvent) -> Option<String> {
    Some(match e {
        SessionEvent::Progress { .. }
        | SessionEvent::Acknowledged { .. }
        | SessionEvent::Remaining { .. } => return None,
        SessionEvent::Applied { n_entries, .. } => format!("applied({n_entries})"),
        SessionEvent::Fork { seq, .. } => format!("fork(#{seq})"),
        SessionEvent::Quarantined { reason, .. } => format!("quarantined({reason})"),
        SessionEvent::CertificateRefused { .. } => "certificate_refused".into(),
        SessionEvent::CaughtUp => "caught_up".into(),
        SessionEvent::CheckpointBreach(b) => format!("breach({} #{})", b.kind(), b.attested().seq),
        SessionEvent::RevocationListLearned { number } => format!("revocation_list({number})"),
        SessionEvent::Closed { code, remote, .. } => {
            format!(
                "closed({code:?}, {})",
                if *remote { "remote" } else { "local" }
            )
        }
        other => format!("{other:?}"),
    })
}

pub(crate) fn media_chain(k: &SigningKey, n: u64) -> Vec<SignedEntry> {
    chain(k, n, |i| media(i, 40))
}

pub(crate) fn frames_of<'a>(
    pair: &'a Outcome,
    from_a: bool,
    name: &'a str,
) -> impl Iterator<Item = Message> + 'a {
    pair.sent
        .iter()
        .filter(move |t| t.from_a == from_a && t.name == name)
        .map(|t| {
            let plain = compress::open(&t.frame, FrameEncodings::DEFLATE).unwrap();
            message::decode(&plain).unwrap().message
        })
}
