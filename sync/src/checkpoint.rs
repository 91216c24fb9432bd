//! Checkpoints: what hubs have attested, and the two breaches a reader
//! looks for (`docs/protocol.md` 2.11).
//!
//! A hub periodically signs a `hub_checkpoint` entry listing heads it
//! holds. Every store keeps, per hub and author, the highest head any of
//! that hub's checkpoints attested ([`Attestation`]). A session then
//! checks what its peer presents against them:
//!
//! - **truncation**: the peer *is* the hub, and presents an author's chain
//!   shorter than it attested (a restore from an old backup, or a hub
//!   dropping entries it acknowledged). The session carries on: this side
//!   sends back what the hub lost.
//! - **fork**: any peer presents a head, or sends an entry, at an attested
//!   position with another id than the attested one. Such an entry is
//!   refused (quarantined as `contradicts_checkpoint`), so the attested
//!   history stays the one in the log.
//!
//! Only heads are attested; because chains are hash-linked, the attested
//! head fixes every earlier entry of the chain too, and an entry that
//! contradicts an earlier position cannot link to the attested head.
//!
//! Pure: no IO, no clock.

use std::collections::BTreeMap;

use sentinel_schema::{AuthorId, EntryId, Head, HubCheckpoint};

/// One hub's statement that it held `author`'s chain up to `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attestation {
    /// The hub that signed the checkpoint.
    pub hub: AuthorId,
    pub author: AuthorId,
    pub head: Head,
}

/// A contradiction between a checkpoint and what a peer (or the local log)
/// presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// The hub presents `author`'s chain ending at seq `presented` (0: not
    /// at all), below the seq it attested.
    Truncated {
        hub: AuthorId,
        author: AuthorId,
        attested: Head,
        presented: u64,
    },
    /// At the attested position, an entry with another id.
    Forked {
        hub: AuthorId,
        author: AuthorId,
        attested: Head,
        presented: EntryId,
    },
}

impl Breach {
    /// A stable name: `truncated` or `forked`.
    pub fn kind(&self) -> &'static str {
        match self {
            Breach::Truncated { .. } => "truncated",
            Breach::Forked { .. } => "forked",
        }
    }

    /// The hub whose checkpoint is contradicted.
    pub fn hub(&self) -> AuthorId {
        match self {
            Breach::Truncated { hub, .. } | Breach::Forked { hub, .. } => *hub,
        }
    }

    /// The author whose chain is concerned.
    pub fn author(&self) -> AuthorId {
        match self {
            Breach::Truncated { author, .. } | Breach::Forked { author, .. } => *author,
        }
    }

    /// The attested head.
    pub fn attested(&self) -> Head {
        match self {
            Breach::Truncated { attested, .. } | Breach::Forked { attested, .. } => *attested,
        }
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Truncated {
                hub,
                author,
                attested,
                presented,
            } => write!(
                f,
                "hub {hub} attested {author} up to seq {} but presents seq {presented}: its log was truncated",
                attested.seq
            ),
            Breach::Forked {
                hub,
                author,
                attested,
                presented,
            } => write!(
                f,
                "hub {hub} attested {author} seq {} as {} but entry {presented} was presented there: a fork",
                attested.seq, attested.id
            ),
        }
    }
}

/// Every attestation a store holds, indexed for the two checks.
#[derive(Debug, Clone, Default)]
pub struct Attested {
    /// Per hub, per author: the highest attested head.
    by_hub: BTreeMap<AuthorId, BTreeMap<AuthorId, Head>>,
    /// Per `(author, seq)`: the attesting hubs and the id each attested.
    by_position: BTreeMap<(AuthorId, u64), Vec<(AuthorId, EntryId)>>,
}

impl Attested {
    pub fn new(attestations: impl IntoIterator<Item = Attestation>) -> Attested {
        let mut a = Attested::default();
        for x in attestations {
            a.insert(x);
        }
        a
    }

    fn insert(&mut self, x: Attestation) {
        let heads = self.by_hub.entry(x.hub).or_default();
        if let Some(old) = heads.get(&x.author).copied() {
            if old.seq >= x.head.seq {
                return;
            }
            if let Some(v) = self.by_position.get_mut(&(x.author, old.seq)) {
                v.retain(|(hub, _)| *hub != x.hub);
                if v.is_empty() {
                    self.by_position.remove(&(x.author, old.seq));
                }
            }
        }
        heads.insert(x.author, x.head);
        self.by_position
            .entry((x.author, x.head.seq))
            .or_default()
            .push((x.hub, x.head.id));
    }

    /// Takes in a checkpoint signed by `hub`; keeps per author the
    /// highest head.
    pub fn learn(&mut self, hub: AuthorId, checkpoint: &HubCheckpoint) {
        for (author, head) in &checkpoint.heads {
            self.insert(Attestation {
                hub,
                author: *author,
                head: *head,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_hub.is_empty()
    }

    /// Every attestation held, hub by hub, authors ascending.
    pub fn iter(&self) -> impl Iterator<Item = Attestation> + '_ {
        self.by_hub.iter().flat_map(|(hub, heads)| {
            heads.iter().map(|(author, head)| Attestation {
                hub: *hub,
                author: *author,
                head: *head,
            })
        })
    }

    /// The highest head `hub` attested for `author`.
    pub fn get(&self, hub: &AuthorId, author: &AuthorId) -> Option<Head> {
        self.by_hub.get(hub)?.get(author).copied()
    }

    /// Checks one entry position: a breach when a hub attested another id
    /// at `(author, seq)`.
    pub fn check_entry(&self, author: AuthorId, seq: u64, id: EntryId) -> Option<Breach> {
        self.by_position
            .get(&(author, seq))?
            .iter()
            .find(|(_, attested)| *attested != id)
            .map(|(hub, attested)| Breach::Forked {
                hub: *hub,
                author,
                attested: Head { seq, id: *attested },
                presented: id,
            })
    }

    /// Checks the heads a peer presents. `peer` is the peer's identity as
    /// its certificate proved: when it is a hub with attestations, every
    /// chain it attested must still reach the attested seq (truncation),
    /// with the attested id there when the head is at that seq. Heads of
    /// any peer at an attested position must carry the attested id (fork).
    /// `heads` must be in ascending author order.
    pub fn check_heads(&self, peer: Option<&AuthorId>, heads: &[(AuthorId, Head)]) -> Vec<Breach> {
        let mut out = Vec::new();
        if let Some(own) = peer.and_then(|p| self.by_hub.get(p).map(|h| (p, h))) {
            let (hub, attested) = own;
            for (author, a) in attested {
                let presented = heads
                    .binary_search_by(|(x, _)| x.cmp(author))
                    .ok()
                    .map_or(0, |i| heads[i].1.seq);
                if presented < a.seq {
                    out.push(Breach::Truncated {
                        hub: *hub,
                        author: *author,
                        attested: *a,
                        presented,
                    });
                }
            }
        }
        for (author, head) in heads {
            if let Some(b) = self.check_entry(*author, head.seq, head.id) {
                out.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> AuthorId {
        AuthorId([n; 32])
    }

    fn head(seq: u64, id: u8) -> Head {
        Head {
            seq,
            id: EntryId([id; 32]),
        }
    }

    fn attested() -> Attested {
        let mut x = Attested::default();
        x.learn(
            a(9),
            &HubCheckpoint {
                heads: vec![(a(1), head(5, 15)), (a(2), head(3, 23))],
            },
        );
        // A later checkpoint of the same hub raises author 1 to seq 7; an
        // older one arriving late changes nothing.
        x.learn(
            a(9),
            &HubCheckpoint {
                heads: vec![(a(1), head(7, 17))],
            },
        );
        x.learn(
            a(9),
            &HubCheckpoint {
                heads: vec![(a(1), head(4, 14))],
            },
        );
        x
    }

    #[test]
    fn keeps_the_highest_head_per_hub_and_author() {
        let x = attested();
        assert_eq!(x.get(&a(9), &a(1)), Some(head(7, 17)));
        assert_eq!(x.get(&a(9), &a(2)), Some(head(3, 23)));
        assert_eq!(x.iter().count(), 2);
        assert!(x.check_entry(a(1), 5, EntryId([99; 32])).is_none());
    }

    #[test]
    fn the_hub_presenting_a_shorter_chain_is_a_truncation() {
        let x = attested();
        let heads = vec![(a(1), head(6, 16)), (a(2), head(3, 23))];
        let found = x.check_heads(Some(&a(9)), &heads);
        assert_eq!(
            found,
            vec![Breach::Truncated {
                hub: a(9),
                author: a(1),
                attested: head(7, 17),
                presented: 6
            }]
        );
        // An author missing entirely is truncated to 0.
        let found = x.check_heads(Some(&a(9)), &[(a(1), head(7, 17))]);
        assert_eq!(found.len(), 1);
        assert!(matches!(found[0], Breach::Truncated { presented: 0, .. }));
        // The same heads from another peer are no breach: nodes hold less.
        assert!(x.check_heads(Some(&a(3)), &heads).is_empty());
        assert!(x.check_heads(None, &heads).is_empty());
        // Longer chains are fine.
        let longer = vec![(a(1), head(9, 19)), (a(2), head(3, 23))];
        assert!(x.check_heads(Some(&a(9)), &longer).is_empty());
    }

    #[test]
    fn another_id_at_an_attested_position_is_a_fork_from_any_peer() {
        let x = attested();
        let heads = vec![(a(1), head(7, 66))];
        for peer in [Some(a(9)), Some(a(3)), None] {
            let found = x.check_heads(peer.as_ref(), &heads);
            assert!(
                found.contains(&Breach::Forked {
                    hub: a(9),
                    author: a(1),
                    attested: head(7, 17),
                    presented: EntryId([66; 32]),
                }),
                "{found:?}"
            );
        }
        assert_eq!(
            x.check_entry(a(2), 3, EntryId([1; 32])).map(|b| b.kind()),
            Some("forked")
        );
        assert!(x.check_entry(a(2), 3, EntryId([23; 32])).is_none());
        assert!(x.check_entry(a(2), 4, EntryId([1; 32])).is_none());
    }

    #[test]
    fn two_hubs_are_checked_separately() {
        let mut x = attested();
        x.learn(
            a(8),
            &HubCheckpoint {
                heads: vec![(a(1), head(2, 12))],
            },
        );
        // Hub 8 presenting author 1 at seq 2 is fine; hub 9 is not.
        let heads = vec![(a(1), head(2, 12)), (a(2), head(3, 23))];
        assert!(x.check_heads(Some(&a(8)), &heads).is_empty());
        assert_eq!(x.check_heads(Some(&a(9)), &heads).len(), 1);
        assert_eq!(
            x.check_entry(a(1), 2, EntryId([0; 32])).map(|b| b.hub()),
            Some(a(8))
        );
    }
}
