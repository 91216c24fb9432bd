//! Two sessions and their stores, joined by an in-memory, ordered link:
//! the `Pair` of quinn-proto's tests. Frames can be inspected, dropped or
//! altered on the way; time is virtual.

use crate::compress;
use crate::message::{self, FrameEncodings};
use crate::session::{Session, SessionConfig, SessionError, SessionEvent};
use crate::store::SyncStore;

/// One side: its store, its session and every event it produced.
#[derive(Debug)]
pub struct Peer<S> {
    pub store: S,
    pub session: Session,
    pub events: Vec<SessionEvent>,
}

impl<S: SyncStore> Peer<S> {
    pub fn new(store: S, config: SessionConfig) -> Peer<S> {
        Peer {
            store,
            session: Session::new(config),
            events: Vec::new(),
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }
}

/// A frame on the link, as sent.
#[derive(Debug, Clone)]
pub struct Transmitted {
    /// Sent by `a` (to `b`), else by `b`.
    pub from_a: bool,
    pub frame: Vec<u8>,
    /// The message name, or `"?"` if the frame does not decode.
    pub name: &'static str,
}

/// Two peers on one link.
#[derive(Debug)]
pub struct Pair<A, B> {
    pub a: Peer<A>,
    pub b: Peer<B>,
    pub now_ms: u64,
    /// Every frame sent so far, in the order it was sent.
    pub sent: Vec<Transmitted>,
}

impl<A: SyncStore, B: SyncStore> Pair<A, B> {
    pub fn new(a: Peer<A>, b: Peer<B>) -> Pair<A, B> {
        Pair {
            a,
            b,
            now_ms: 1_790_000_000_000,
            sent: Vec::new(),
        }
    }

    /// Starts both sessions (each sends its Hello).
    pub fn start(&mut self) -> Result<(), SessionError> {
        self.a.session.start(&self.a.store, self.now_ms)?;
        self.b.session.start(&self.b.store, self.now_ms)?;
        self.a.drain_events();
        self.b.drain_events();
        Ok(())
    }

    /// Delivers every frame until neither side has anything to send.
    pub fn drive(&mut self) -> Result<(), SessionError> {
        self.drive_with(|_, frame| Some(frame))
    }

    /// Like [`Pair::drive`], but each frame passes through `link` first,
    /// which may return it (changed or not) or drop it (`None`). `link`
    /// also sees the frame as sent: its direction and message name.
    pub fn drive_with(
        &mut self,
        mut link: impl FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>>,
    ) -> Result<(), SessionError> {
        loop {
            let mut moved = false;
            while let Some(frame) = self.a.session.poll_transmit() {
                moved = true;
                let t = self.record(true, &frame);
                if let Some(frame) = link(&t, frame) {
                    self.b
                        .session
                        .handle(&frame, &mut self.b.store, self.now_ms)?;
                    self.b.drain_events();
                }
            }
            while let Some(frame) = self.b.session.poll_transmit() {
                moved = true;
                let t = self.record(false, &frame);
                if let Some(frame) = link(&t, frame) {
                    self.a
                        .session
                        .handle(&frame, &mut self.a.store, self.now_ms)?;
                    self.a.drain_events();
                }
            }
            if !moved {
                return Ok(());
            }
        }
    }

    /// Advances virtual time and lets both sessions check their timeouts.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.a.session.handle_timeout(self.now_ms);
        self.b.session.handle_timeout(self.now_ms);
        self.a.drain_events();
        self.b.drain_events();
    }

    /// Tells side `a` (or `b`) that its store has new entries.
    pub fn local_entries(&mut self, on_a: bool) -> Result<(), SessionError> {
        if on_a {
            self.a.session.on_local_entries(&self.a.store)?;
        } else {
            self.b.session.on_local_entries(&self.b.store)?;
        }
        Ok(())
    }

    fn record(&mut self, from_a: bool, frame: &[u8]) -> Transmitted {
        // Named by the frame inside, when it travels compressed.
        let name = compress::open(frame, FrameEncodings(u64::MAX))
            .and_then(|plain| message::decode(&plain))
            .map_or("?", |f| f.message.name());
        let t = Transmitted {
            from_a,
            frame: frame.to_vec(),
            name,
        };
        self.sent.push(t.clone());
        t
    }

    /// Bytes sent in both directions.
    pub fn wire_bytes(&self) -> usize {
        self.sent.iter().map(|t| t.frame.len()).sum()
    }

    /// Into the two stores (for a new session over the same data).
    pub fn into_stores(self) -> (A, B) {
        (self.a.store, self.b.store)
    }
}
