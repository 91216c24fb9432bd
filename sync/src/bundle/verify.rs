//! Verifying an audit bundle with nothing but the deployment CA's
//! certificate (`docs/protocol.md` 4.3): the hub's signature over the
//! contents, by a hub certificate that chains to the CA; every
//! certificate and revocation list against the CA; every entry's
//! signature, its author's certificate and role at the entry's time and
//! the revocations in force; the links within each run; and each run
//! against the newest head a verified hub checkpoint attests for its
//! author. Every problem names what is wrong — an entry by author, seq
//! and id.
//!
//! Pure: no IO, no clock (the bundle's own `created_ms` is the time the
//! hub's certificate is judged at; each entry is judged at its HLC time).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use sentinel_certs::{verify_identity, CaCert, Identity, RevocationList};
use sentinel_schema::{
    check_change, check_link, verify_signatures, AuthorId, Body, DeviceRole, EntryId, Head, Link,
    SignedEntry,
};
use serde::Serialize;

use super::wire::{signed_message, Bundle, Run};
use crate::checkpoint::Attested;
use crate::message_error::MessageError;
use crate::trust::{AuthorInfo, Revocations};
use crate::verify::{check_author, Refusal};

/// Most problems listed per run (the rest are counted).
const MAX_PROBLEMS_PER_RUN: usize = 100;

/// Why bytes are not a bundle at all (nothing in them can be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("not an audit bundle: {0}")]
    Decode(MessageError),
    #[error("the bundle's contents do not decode: {0}")]
    Contents(MessageError),
}

/// One thing wrong, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleProblem {
    /// `bundle`, `certificate`, `revocation_list`, `revocation`,
    /// `checkpoint`, `run` or `entry`.
    pub what: &'static str,
    pub author: Option<String>,
    pub seq: Option<u64>,
    pub id: Option<String>,
    pub reason: String,
}

/// The newest checkpoint head that covers a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointHead {
    /// The hub that signed the checkpoint.
    pub hub: String,
    /// The attested head.
    pub seq: u64,
    pub id: String,
    /// The checkpoint entry.
    pub checkpoint: String,
}

/// One run, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub author: String,
    /// The author's name and role, from its certificate.
    pub name: Option<String>,
    pub role: Option<&'static str>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: usize,
    /// The checkpoint head within the run that fixes every entry up to it
    /// (`None`: no verified checkpoint attests a seq in the run).
    pub attested: Option<CheckpointHead>,
}

/// What [`verify_bundle`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    /// The signing hub's name and key, from its certificate.
    pub hub: Option<String>,
    pub hub_key: String,
    pub created_ms: u64,
    pub from_ms: u64,
    pub to_ms: u64,
    pub area: Option<String>,
    /// Whether the hub's signature over the contents verifies.
    pub signature_ok: bool,
    pub certificates: usize,
    pub revocation_lists: usize,
    pub revocations: usize,
    pub checkpoints: usize,
    pub entries: usize,
    pub runs: Vec<RunReport>,
    pub problems: Vec<BundleProblem>,
}

impl BundleReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(what: &'static str, reason: impl Into<String>) -> BundleProblem {
    BundleProblem {
        what,
        author: None,
        seq: None,
        id: None,
        reason: reason.into(),
    }
}

fn entry_problem(e: &SignedEntry, what: &'static str, reason: impl Into<String>) -> BundleProblem {
    BundleProblem {
        what,
        author: Some(e.author().to_hex()),
        seq: Some(e.seq()),
        id: Some(e.id().to_hex()),
        reason: reason.into(),
    }
}

/// The verified certificates, by author (an author may hold several).
#[derive(Default)]
struct Authors(BTreeMap<AuthorId, Vec<Identity>>);

impl Authors {
    /// The certificate of `author` valid at `at_ms`, else any of its.
    fn info(&self, author: &AuthorId, at_ms: u64) -> Option<AuthorInfo> {
        let ids = self.0.get(author)?;
        let id = ids.iter().find(|i| i.valid_at(at_ms)).or(ids.first())?;
        Some(AuthorInfo {
            author: id.author,
            role: id.role,
            not_before_ms: id.not_before_ms,
            not_after_ms: id.not_after_ms,
        })
    }
}

/// The trust state a bundle builds from what it carries.
#[derive(Default)]
struct Trust {
    authors: Authors,
    revocations: Revocations,
    /// Strictest last valid seq from verified hub `revocation` entries.
    entry_revocations: BTreeMap<AuthorId, u64>,
    attested: Attested,
    /// Per (hub, author, seq): the checkpoint entry that attests it.
    checkpoint_of: BTreeMap<(AuthorId, AuthorId, u64), EntryId>,
}

impl Trust {
    fn last_valid_seq(&self, author: &AuthorId) -> Option<u64> {
        [
            self.revocations.last_valid_seq(author),
            self.entry_revocations.get(author).copied(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Every check of one entry but its link: signature, certificate and
    /// role at its time, revocations, the event change, the checkpoints.
    fn check(&self, e: &SignedEntry, signature: Result<(), String>) -> Result<(), String> {
        signature?;
        let entry = e.entry();
        let info = self.authors.info(&entry.author, entry.hlc.wall_ms);
        check_author(entry, info, self.last_valid_seq(&entry.author)).map_err(|r| r.to_string())?;
        if let Body::EventChange(change) = &entry.body {
            check_change(&entry.author, &change.change)
                .map_err(|err| Refusal::BadChange(err).to_string())?;
        }
        if let Some(breach) = self.attested.check_entry(entry.author, entry.seq, e.id()) {
            return Err(breach.to_string());
        }
        Ok(())
    }
}

/// An entry of the bundle decoded, with its signature's verdict; or why
/// it does not decode.
type Decoded = Result<(SignedEntry, Result<(), String>), String>;

/// Decodes and signature-checks a list of signed entries.
fn entries(list: &[Vec<u8>]) -> Vec<Decoded> {
    let decoded: Vec<Result<SignedEntry, String>> = list
        .iter()
        .map(|b| SignedEntry::from_bytes(b.clone()).map_err(|e| format!("does not decode: {e}")))
        .collect();
    let ok: Vec<SignedEntry> = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .cloned()
        .collect();
    let mut sigs = verify_signatures(&ok).into_iter();
    decoded
        .into_iter()
        .map(|d| {
            d.map(|e| {
                let sig = match sigs.next() {
                    Some(verdict) => verdict.map_err(|err| err.to_string()),
                    None => Err("its signature was not checked".to_string()),
                };
                (e, sig)
            })
        })
        .collect()
}

/// Verifies `bytes` as an audit bundle against the deployment CA `ca`.
pub fn verify_bundle(bytes: &[u8], ca: &CaCert) -> Result<BundleReport, BundleError> {
    let bundle = Bundle::decode(bytes).map_err(BundleError::Decode)?;
    let contents = bundle.read_contents().map_err(BundleError::Contents)?;
    let mut report = BundleReport {
        created_ms: contents.created_ms,
        from_ms: contents.from_ms,
        to_ms: contents.to_ms,
        area: contents.area.clone(),
        certificates: contents.certificates.len(),
        revocation_lists: contents.revocation_lists.len(),
        revocations: contents.revocations.len(),
        checkpoints: contents.checkpoints.len(),
        ..BundleReport::default()
    };
    check_signature(&bundle, ca, &mut report);

    let mut trust = Trust::default();
    for (i, der) in contents.certificates.iter().enumerate() {
        match verify_identity(der, ca) {
            Ok(id) => trust.authors.0.entry(id.author).or_default().push(id),
            Err(e) => report.problems.push(problem(
                "certificate",
                format!(
                    "certificate {} of the bundle does not chain to the CA: {e}",
                    i + 1
                ),
            )),
        }
    }
    for (i, list) in contents.revocation_lists.iter().enumerate() {
        match RevocationList::verify(list, ca) {
            Ok(list) if list.number >= trust.revocations.number => {
                trust.revocations = Revocations::from(&list)
            }
            Ok(_) => {}
            Err(e) => report.problems.push(problem(
                "revocation_list",
                format!("revocation list {} is not the CA's: {e}", i + 1),
            )),
        }
    }
    signed_by_hubs(&contents.revocations, "revocation", &mut trust, &mut report);
    signed_by_hubs(&contents.checkpoints, "checkpoint", &mut trust, &mut report);
    for run in &contents.runs {
        let r = check_run(run, &trust, &mut report.problems);
        report.entries += r.entries;
        report.runs.push(r);
    }
    Ok(report)
}

/// The hub's certificate and its signature over the contents.
fn check_signature(bundle: &Bundle, ca: &CaCert, report: &mut BundleReport) {
    let hub = match verify_identity(&bundle.hub_certificate, ca) {
        Ok(id) => id,
        Err(e) => {
            report.problems.push(problem(
                "bundle",
                format!("the signing hub's certificate does not chain to the CA: {e}"),
            ));
            return;
        }
    };
    report.hub = Some(hub.name.clone());
    report.hub_key = hub.author.to_hex();
    if hub.role != DeviceRole::Hub {
        report.problems.push(problem(
            "bundle",
            format!("the bundle is signed by a {}, not a hub", hub.role),
        ));
    }
    if !hub.valid_at(report.created_ms) {
        report.problems.push(problem(
            "bundle",
            "the signing hub's certificate is not valid at the bundle's creation time",
        ));
    }
    let key = VerifyingKey::from_bytes(hub.author.as_bytes());
    let signature = Signature::from_bytes(&bundle.signature);
    report.signature_ok = key
        .map(|k| {
            k.verify_strict(&signed_message(&bundle.contents), &signature)
                .is_ok()
        })
        .unwrap_or(false);
    if !report.signature_ok {
        report.problems.push(problem(
            "bundle",
            format!(
                "the bundle's signature does not verify with the key of hub {}: its contents were changed or it was not signed by that hub",
                hub.name
            ),
        ));
    }
}

/// Hub-signed revocation or checkpoint entries: each verified and its
/// signer's certificate and role checked, then taken in.
fn signed_by_hubs(
    list: &[Vec<u8>],
    what: &'static str,
    trust: &mut Trust,
    report: &mut BundleReport,
) {
    for (i, item) in entries(list).into_iter().enumerate() {
        let (e, sig) = match item {
            Ok(x) => x,
            Err(reason) => {
                report
                    .problems
                    .push(problem(what, format!("{what} {}: {reason}", i + 1)));
                continue;
            }
        };
        if let Err(reason) = trust.check(&e, sig) {
            report.problems.push(entry_problem(&e, what, reason));
            continue;
        }
        match &e.entry().body {
            Body::Revocation(r) if what == "revocation" => {
                let last = trust
                    .entry_revocations
                    .entry(r.key)
                    .or_insert(r.last_valid_seq);
                *last = (*last).min(r.last_valid_seq);
            }
            Body::HubCheckpoint(cp) if what == "checkpoint" => {
                trust.attested.learn(e.author(), cp);
                for (author, head) in &cp.heads {
                    trust
                        .checkpoint_of
                        .insert((e.author(), *author, head.seq), e.id());
                }
            }
            other => report.problems.push(entry_problem(
                &e,
                what,
                format!("a {} entry where a {what} belongs", other.kind().as_str()),
            )),
        }
    }
}

/// One run: every entry, the links between them, the checkpoint heads.
fn check_run(run: &Run, trust: &Trust, problems: &mut Vec<BundleProblem>) -> RunReport {
    let mut found: Vec<BundleProblem> = Vec::new();
    let author_hex = run.author.to_hex();
    let expected = run.last_seq.checked_sub(run.first_seq).map(|d| d + 1);
    if expected != Some(run.entries.len() as u64) {
        found.push(BundleProblem {
            what: "run",
            author: Some(author_hex.clone()),
            seq: None,
            id: None,
            reason: format!(
                "the run declares seqs {}..={} but holds {} entries: entries are missing or added",
                run.first_seq,
                run.last_seq,
                run.entries.len()
            ),
        });
    }
    let mut tip: Option<Head> = None;
    let mut held: BTreeMap<u64, EntryId> = BTreeMap::new();
    for (i, item) in entries(&run.entries).into_iter().enumerate() {
        let at = run.first_seq.saturating_add(i as u64);
        let (e, sig) = match item {
            Ok(x) => x,
            Err(reason) => {
                found.push(BundleProblem {
                    what: "entry",
                    author: Some(author_hex.clone()),
                    seq: Some(at),
                    id: None,
                    reason,
                });
                tip = None;
                continue;
            }
        };
        if e.author() != run.author {
            found.push(entry_problem(
                &e,
                "entry",
                format!("an entry of another author in the run of author {author_hex}"),
            ));
            continue;
        }
        if let Err(reason) = trust.check(&e, sig) {
            found.push(entry_problem(&e, "entry", reason));
        }
        if i == 0 && e.seq() != run.first_seq {
            found.push(entry_problem(
                &e,
                "entry",
                format!(
                    "the run starts at seq {} but its first entry is seq {}",
                    run.first_seq,
                    e.seq()
                ),
            ));
        }
        if let Some(t) = tip {
            let fault = match check_link(Some(t), &e) {
                Ok(Link::Next) => None,
                Ok(Link::AlreadyHeld) => Some(format!("seq {} appears twice", e.seq())),
                Err(fault) => Some(fault.to_string()),
            };
            if let Some(fault) = fault {
                found.push(entry_problem(
                    &e,
                    "entry",
                    format!("does not follow seq {} ({}): {fault}", t.seq, t.id),
                ));
            }
        }
        tip = Some(Head {
            seq: e.seq(),
            id: e.id(),
        });
        held.insert(e.seq(), e.id());
    }
    let attested = attestation(run, trust, &held, &mut found);
    let n = found.len();
    problems.extend(found.into_iter().take(MAX_PROBLEMS_PER_RUN));
    if n > MAX_PROBLEMS_PER_RUN {
        problems.push(BundleProblem {
            what: "run",
            author: Some(author_hex.clone()),
            seq: None,
            id: None,
            reason: format!("{} more problems in this run", n - MAX_PROBLEMS_PER_RUN),
        });
    }
    let info = trust.authors.0.get(&run.author).and_then(|ids| ids.first());
    RunReport {
        author: author_hex,
        name: info.map(|i| i.name.clone()),
        role: info.map(|i| i.role.as_str()),
        first_seq: run.first_seq,
        last_seq: run.last_seq,
        entries: run.entries.len(),
        attested,
    }
}

/// The newest attested head in the run, checked; a head beyond the run
/// is a problem (the run must reach it).
fn attestation(
    run: &Run,
    trust: &Trust,
    held: &BTreeMap<u64, EntryId>,
    found: &mut Vec<BundleProblem>,
) -> Option<CheckpointHead> {
    let mut best: Option<CheckpointHead> = None;
    for a in trust.attested.iter().filter(|a| a.author == run.author) {
        if a.head.seq > run.last_seq {
            found.push(BundleProblem {
                what: "run",
                author: Some(run.author.to_hex()),
                seq: Some(a.head.seq),
                id: Some(a.head.id.to_hex()),
                reason: format!(
                    "hub {} attests seq {} but the run ends at seq {}: the entries up to the attested head are missing",
                    a.hub, a.head.seq, run.last_seq
                ),
            });
            continue;
        }
        // Below the run: it says nothing about these entries.
        if a.head.seq < run.first_seq || held.get(&a.head.seq) != Some(&a.head.id) {
            continue;
        }
        if best.as_ref().is_some_and(|b| b.seq >= a.head.seq) {
            continue;
        }
        let checkpoint = trust
            .checkpoint_of
            .get(&(a.hub, a.author, a.head.seq))
            .map(|id| id.to_hex())
            .unwrap_or_default();
        best = Some(CheckpointHead {
            hub: a.hub.to_hex(),
            seq: a.head.seq,
            id: a.head.id.to_hex(),
            checkpoint,
        });
    }
    best
}
