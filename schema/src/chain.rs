//! Chain rules for one author's log: starts at seq 1, no gaps, each entry
//! names the id of the one before, one entry per seq.

use crate::entry::SignedEntry;
use crate::error::{ChainError, ChainFault, VerifyError};
use crate::heads::Head;
use crate::ids::{AuthorId, EntryId};
use crate::verify::verify_signatures;

/// How an entry relates to the newest entry a store holds for its author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The entry extends the chain: seq is one more and prev matches.
    Next,
    /// The store already has this seq: the caller compares ids to tell a
    /// duplicate (same id) from a fork (different id).
    AlreadyHeld,
}

/// Checks how `entry` links to `tip`, the newest entry held for its author
/// (`None` when none is held). Pure: a store calls it before appending.
pub fn check_link(tip: Option<Head>, entry: &SignedEntry) -> Result<Link, ChainFault> {
    let seq = entry.seq();
    match tip {
        None if seq == 1 => Ok(Link::Next),
        None => Err(ChainFault::NotStartingAtOne(seq)),
        Some(t) if seq <= t.seq => Ok(Link::AlreadyHeld),
        Some(t) if seq > t.seq + 1 => Err(ChainFault::Gap {
            expected: t.seq + 1,
            found: seq,
        }),
        Some(t) if entry.entry().prev != Some(t.id) => {
            Err(ChainFault::WrongPrev { expected: t.id })
        }
        Some(_) => Ok(Link::Next),
    }
}

/// Verifies one author's whole chain, given in storage order from seq 1:
/// every signature (batched) and every link. Returns the head on success,
/// or the *first* bad entry and why.
pub fn verify_chain(author: AuthorId, entries: &[SignedEntry]) -> Result<Option<Head>, ChainError> {
    let verdicts = verify_signatures(entries);
    // ids[k] is the id of the entry at seq k + 1 accepted so far.
    let mut ids: Vec<EntryId> = Vec::with_capacity(entries.len());
    let mut tip: Option<Head> = None;
    for (index, (e, verdict)) in entries.iter().zip(verdicts).enumerate() {
        let fail = |fault| ChainError {
            author,
            seq: e.seq(),
            id: e.id(),
            index,
            fault,
        };
        if e.author() != author {
            return Err(fail(ChainFault::WrongAuthor));
        }
        match verdict {
            Ok(()) => {}
            Err(VerifyError::BadAuthorKey(_)) => return Err(fail(ChainFault::BadAuthorKey)),
            Err(_) => return Err(fail(ChainFault::BadSignature)),
        }
        match check_link(tip, e).map_err(fail)? {
            Link::Next => {
                ids.push(e.id());
                tip = Some(Head {
                    seq: e.seq(),
                    id: e.id(),
                });
            }
            Link::AlreadyHeld => {
                // seq <= tip.seq, and seq >= 1, so the index is in range.
                let other = ids[(e.seq() - 1) as usize];
                return Err(fail(if other == e.id() {
                    ChainFault::Duplicate
                } else {
                    ChainFault::Fork { other }
                }));
            }
        }
    }
    Ok(tip)
}
