//! Writing a signed audit bundle (`sentinel_sync::bundle`,
//! `docs/protocol.md` part 4) for `sentinel-hub audit bundle`: the entries
//! whose HLC time is in a range (and, with an area, that are about an
//! event located in it), each author's run extended up to the newest head
//! the hub's checkpoints attest, the certificates, revocation lists and
//! hub revocations they are judged by, the checkpoints, signed with the
//! hub's key.
//!
//! Never does: SQL (the store's `bundle_selection`, `checkpoint_entries`
//! and the log's reads), or write the file (the binary does).

use std::collections::{BTreeMap, BTreeSet};

use sentinel_certs::Enrollment;
use sentinel_schema::{AuthorId, BBox, Body, EntryId, Head, SignedEntry};
use sentinel_sync::bundle::{Bundle, Contents, Run};

use crate::store::{PgStore, StoreError};

/// Most entries one bundle holds (runs included): a larger selection is
/// refused, to be split into several ranges.
pub const MAX_BUNDLE_ENTRIES: u64 = 500_000;
/// Checkpoint entries read per query while looking for the newest head
/// of every selected author, and how many at most.
const CHECKPOINT_PAGE: usize = 256;
const MAX_CHECKPOINTS_SCANNED: usize = 100_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleWriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the selection holds {0} entries with the runs to the checkpoints, more than {max}: \
         ask for a shorter range",
        max = MAX_BUNDLE_ENTRIES
    )]
    TooLarge(u64),
}

/// What to put in a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleRequest {
    /// Entries whose HLC time is in `from_ms..to_ms`.
    pub from_ms: u64,
    pub to_ms: u64,
    /// Only entries about events located here; the text as given.
    pub area: Option<(BBox, String)>,
}

impl BundleRequest {
    /// The command line's `--from`, `--to` and `--bbox`, checked; the
    /// error names the option.
    pub fn parse(from: &str, to: &str, bbox: Option<String>) -> Result<BundleRequest, String> {
        let from_ms = parse_rfc3339_ms(from).map_err(|e| format!("--from {e}"))?;
        let to_ms = parse_rfc3339_ms(to).map_err(|e| format!("--to {e}"))?;
        if to_ms <= from_ms {
            return Err(format!("--to {to} is not after --from {from}"));
        }
        let area = match bbox {
            Some(text) => Some((parse_bbox(&text).map_err(|e| format!("--bbox {e}"))?, text)),
            None => None,
        };
        Ok(BundleRequest {
            from_ms,
            to_ms,
            area,
        })
    }
}

/// What a written bundle holds, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleSummary {
    /// Entries in the range (and area).
    pub selected: u64,
    /// Entries in the bundle: the selected ones and the rest of each run.
    pub entries: u64,
    pub authors: usize,
    pub checkpoints: usize,
    pub certificates: usize,
    /// The signing hub's name.
    pub hub: String,
}

impl std::fmt::Display for BundleSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries selected, {} in {} runs up to the checkpoints' heads, {} checkpoints, \
             {} certificates; signed by hub {}",
            self.selected,
            self.entries,
            self.authors,
            self.checkpoints,
            self.certificates,
            self.hub
        )
    }
}

/// Builds and signs a bundle with the hub's identity; `now_ms` is its
/// creation time.
pub async fn write_bundle(
    store: &PgStore,
    hub: &Enrollment,
    request: &BundleRequest,
    now_ms: u64,
) -> Result<(Vec<u8>, BundleSummary), BundleWriteError> {
    let area = request.area.as_ref();
    let selected = store
        .bundle_selection(request.from_ms, request.to_ms, area.map(|(b, _)| b))
        .await?;
    let authors: BTreeSet<AuthorId> = selected.iter().map(|s| s.author).collect();
    let (checkpoints, attested) = newest_checkpoints(store, hub.identity.author, &authors).await?;

    let mut runs = Vec::with_capacity(selected.len());
    let mut total = 0u64;
    for s in &selected {
        let end = match attested.get(&s.author) {
            Some(head) if head.seq >= s.first_seq => s.last_seq.max(head.seq),
            _ => s.last_seq,
        };
        total = total.saturating_add(end - s.first_seq + 1);
        if total > MAX_BUNDLE_ENTRIES {
            return Err(BundleWriteError::TooLarge(total));
        }
        let n = usize::try_from(end - s.first_seq + 1).unwrap_or(usize::MAX);
        let entries = store
            .entries_after(&s.author, s.first_seq - 1, n, usize::MAX)
            .await?;
        let last_seq = entries.last().map_or(s.first_seq - 1, SignedEntry::seq);
        runs.push(Run {
            author: s.author,
            first_seq: s.first_seq,
            last_seq,
            entries: entries.into_iter().map(SignedEntry::into_bytes).collect(),
        });
    }

    let revocations = store.revocation_entries().await?;
    let mut signers: BTreeSet<AuthorId> = authors;
    signers.insert(hub.identity.author);
    signers.extend(revocations.iter().map(|(e, _)| e.author()));
    let mut certificates = vec![hub.cert_der.clone()];
    for author in &signers {
        if *author == hub.identity.author {
            continue;
        }
        if let Some(der) = store.certificate(author).await? {
            certificates.push(der);
        }
    }
    let contents = Contents {
        created_ms: now_ms,
        from_ms: request.from_ms,
        to_ms: request.to_ms,
        area: area.map(|(_, text)| text.clone()),
        certificates,
        revocation_lists: store.revocation_list().await?.into_iter().collect(),
        revocations: revocations
            .into_iter()
            .map(|(e, _)| e.into_bytes())
            .collect(),
        checkpoints: checkpoints
            .into_iter()
            .map(SignedEntry::into_bytes)
            .collect(),
        runs,
    };
    let summary = BundleSummary {
        selected: selected.iter().map(|s| s.count).sum(),
        entries: total,
        authors: contents.runs.len(),
        checkpoints: contents.checkpoints.len(),
        certificates: contents.certificates.len(),
        hub: hub.identity.name.clone(),
    };
    let bundle = Bundle::sign(&contents, hub.cert_der.clone(), &hub.key);
    Ok((bundle.encode(), summary))
}

/// The hub's newest checkpoint entries that attest the `authors`: per
/// author the newest head (heads only grow), and the entries that hold
/// those heads, newest first.
async fn newest_checkpoints(
    store: &PgStore,
    hub: AuthorId,
    authors: &BTreeSet<AuthorId>,
) -> Result<(Vec<SignedEntry>, BTreeMap<AuthorId, Head>), StoreError> {
    let mut attested: BTreeMap<AuthorId, Head> = BTreeMap::new();
    let mut kept: Vec<SignedEntry> = Vec::new();
    let mut kept_ids: BTreeSet<EntryId> = BTreeSet::new();
    let mut before = u64::MAX;
    let mut scanned = 0;
    while attested.len() < authors.len() && scanned < MAX_CHECKPOINTS_SCANNED {
        let page = store
            .checkpoint_entries(&hub, before, CHECKPOINT_PAGE)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        before = last.seq();
        scanned += page.len();
        for e in page {
            let Body::HubCheckpoint(cp) = &e.entry().body else {
                continue;
            };
            let mut useful = false;
            for (author, head) in &cp.heads {
                if authors.contains(author) && !attested.contains_key(author) {
                    attested.insert(*author, *head);
                    useful = true;
                }
            }
            if useful && kept_ids.insert(e.id()) {
                kept.push(e);
            }
        }
    }
    Ok((kept, attested))
}

/// `--from`/`--to`: RFC 3339 (`2026-12-01T00:00:00Z`, fractions and
/// offsets allowed) as Unix ms.
pub fn parse_rfc3339_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time such as 2026-12-01T08:00:00Z");
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        t.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let first3: String = frac[..digits].chars().chain("00".chars()).take(3).collect();
        ms = first3.parse::<i64>().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return Err(bad());
            }
            let part = |r: std::ops::Range<usize>| {
                rest.get(r)
                    .and_then(|p| p.parse::<i64>().ok())
                    .ok_or_else(bad)
            };
            let (h, m) = (part(1..3)?, part(4..6)?);
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
    };
    let days_in = [
        31,
        28 + i64::from(leap(year)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || !(1..=days_in[(month - 1) as usize]).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let total = ((days * 24 + hour) * 60 + minute - offset_min) * 60_000 + second * 1000 + ms;
    u64::try_from(total).map_err(|_| format!("{text:?} is before 1970"))
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `--bbox W,S,E,N` in degrees (west ≤ east).
pub fn parse_bbox(text: &str) -> Result<BBox, String> {
    text.parse::<BBox>()
        .map_err(|err| format!("{text:?} is not W,S,E,N in degrees: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_unix_ms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2026-09-21T14:13:20.123Z"),
            Ok(1_790_000_000_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-09-21T16:13:20+02:00"),
            Ok(1_790_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00.5Z"),
            Ok(951_782_400_500)
        );
        for bad in [
            "",
            "2026-09-21",
            "2026-09-21T14:13:20",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-09-21T24:00:00Z",
            "2026-09-21T14:13:20+0200",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_lines_options_are_named_when_wrong() {
        let r = BundleRequest::parse("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", None).unwrap();
        assert_eq!(r.to_ms - r.from_ms, 86_400_000);
        for (from, to, bbox, says) in [
            ("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", None, "--to"),
            ("monday", "2026-12-01T00:00:00Z", None, "--from"),
            (
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                Some("1,2"),
                "--bbox",
            ),
        ] {
            let e = BundleRequest::parse(from, to, bbox.map(str::to_owned)).unwrap_err();
            assert!(e.starts_with(says), "{e}");
        }
    }

    #[test]
    fn boxes_are_four_numbers_west_to_east() {
        let b = parse_bbox("-1.5, 50, 2, 52.25").unwrap();
        assert_eq!((b.min_lon(), b.max_lat()), (-1.5, 52.25));
        for bad in ["1,2,3", "a,b,c,d", "1,2,3,4,5", "10,0,5,1", "0,95,1,96"] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
    }
}
