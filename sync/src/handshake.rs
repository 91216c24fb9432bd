//! The first two states of a session: Hello, and the heads exchange.
//! Each handler answers with the [`Step`] the session takes next; the
//! session (`session.rs`) owns the state it becomes.

use sentinel_schema::{AuthorId, DeviceRole, Head, Heads};

use crate::compress::{Sealer, ENCODING_DEFLATE};
use crate::context::{store_fault, Ctx, Fault, SessionEvent};
use crate::exchange::Exchange;
use crate::message::{CloseCode, Hello, Message, MAX_HEADS_PER_MESSAGE, PROTOCOL_VERSION};
use crate::store::SyncStore;

/// Where the handshake goes after a message.
pub(crate) enum Step {
    /// Digests differ and our heads are sent: collect the peer's.
    ExpectHeads(Box<ExpectHeads>),
    /// Both heads known: exchange what each lacks.
    Reconciling(Box<Exchange>),
    /// The digests were equal: both sides are caught up.
    Live(Box<Exchange>),
}

pub(crate) struct ExpectHello {
    /// Our heads when Hello was sent: if the digests match, the peer's.
    pub(crate) heads: Heads,
}

pub(crate) struct ExpectHeads {
    send_to_peer: bool,
    /// The peer's heads so far, authors ascending.
    received: Vec<(AuthorId, Head)>,
}

impl ExpectHello {
    pub(crate) fn on_hello<S: SyncStore>(
        self,
        hello: Hello,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Fault> {
        if hello.version != PROTOCOL_VERSION {
            return Err(Fault::Peer(
                CloseCode::UnsupportedVersion,
                format!(
                    "peer speaks version {}, this side {PROTOCOL_VERSION}",
                    hello.version
                ),
            ));
        }
        // The peer is who its certificate says; a Hello that claims
        // otherwise ends the session before anything is sent to it.
        if hello.role != ctx.peer_role {
            return Err(Fault::Peer(
                CloseCode::RoleMismatch,
                format!(
                    "the Hello claims the role {}, the certificate says {}",
                    hello.role, ctx.peer_role
                ),
            ));
        }
        if hello.n_authors > ctx.config.max_authors as u64 {
            return Err(too_many_authors(ctx));
        }
        // Batches go compressed only if both Hellos announced DEFLATE; a
        // peer whose Hello has no encodings gets plain frames.
        if ctx
            .config
            .frame_encodings
            .both(hello.frame_encodings)
            .contains(ENCODING_DEFLATE)
        {
            ctx.out.seal_with(Sealer::deflate());
        }
        if ctx.verifier.revocations.number > hello.revocation_number {
            if let Some(list) = store.revocation_list().map_err(store_fault)? {
                ctx.out.send(&Message::RevocationList(list));
            }
        }
        // Nothing is sent to a sensor (by its certificate): sensors only
        // push readings.
        let send_to_peer = ctx.peer_role != DeviceRole::Sensor;
        if hello.heads_digest == self.heads.digest() {
            // The peer holds exactly our heads.
            let ours: Vec<(AuthorId, Head)> = self.heads.iter().map(|(a, h)| (*a, *h)).collect();
            check_checkpoints(&ours, ctx);
            ctx.out.plan(0, 0);
            ctx.out.event(SessionEvent::CaughtUp);
            let mut x = Box::new(Exchange::in_sync(send_to_peer, &self.heads));
            // Entries written since Hello was sent go out now.
            x.push_new(store, ctx)?;
            return Ok(Step::Live(x));
        }
        let heads = store.heads().map_err(store_fault)?;
        let all: Vec<(AuthorId, Head)> = heads.iter().map(|(a, h)| (*a, *h)).collect();
        let mut chunks = all.chunks(MAX_HEADS_PER_MESSAGE).peekable();
        if chunks.peek().is_none() {
            ctx.out.send(&Message::Heads {
                heads: Vec::new(),
                last: true,
            });
        }
        while let Some(chunk) = chunks.next() {
            ctx.out.send(&Message::Heads {
                heads: chunk.to_vec(),
                last: chunks.peek().is_none(),
            });
        }
        Ok(Step::ExpectHeads(Box::new(ExpectHeads {
            send_to_peer,
            received: Vec::new(),
        })))
    }
}

impl ExpectHeads {
    pub(crate) fn on_heads<S: SyncStore>(
        mut self: Box<Self>,
        heads: Vec<(AuthorId, Head)>,
        last: bool,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Fault> {
        if let (Some((prev, _)), Some((first, _))) = (self.received.last(), heads.first()) {
            if prev >= first {
                return Err(Fault::Peer(
                    CloseCode::Malformed,
                    "heads are not in strictly ascending author order across frames".into(),
                ));
            }
        }
        // Checked before the frame's heads are kept: the session never
        // holds more than the cap.
        if self.received.len() + heads.len() > ctx.config.max_authors {
            return Err(too_many_authors(ctx));
        }
        self.received.extend(heads);
        if !last {
            return Ok(Step::ExpectHeads(self));
        }
        check_checkpoints(&self.received, ctx);
        let mut x = Box::new(Exchange::from_heads(
            self.send_to_peer,
            &self.received,
            store,
            ctx,
        )?);
        x.fill(store, ctx)?;
        Ok(Step::Reconciling(x))
    }
}

fn too_many_authors(ctx: &Ctx<'_>) -> Fault {
    Fault::Peer(
        CloseCode::LimitExceeded,
        format!(
            "the peer announces more than {} authors",
            ctx.config.max_authors
        ),
    )
}

/// Reports every way the peer's heads contradict a hub checkpoint. The
/// session carries on: a truncated hub gets back what it lost, and
/// entries at a contradicted position are refused when they arrive.
fn check_checkpoints(peer_heads: &[(AuthorId, Head)], ctx: &mut Ctx<'_>) {
    for breach in ctx
        .verifier
        .attested
        .check_heads(ctx.config.peer.as_ref(), peer_heads)
    {
        ctx.out.event(SessionEvent::CheckpointBreach(breach));
    }
}
