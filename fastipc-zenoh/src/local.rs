//! Every call the bridge makes into a local fastipc queue, and nothing else: open the
//! source queue and read batches of messages with their loss counts (export), open or
//! create the destination queue and write messages (import).
//!
//! Keeping these calls here means a change of the queue API (error types, lossless mode,
//! endpoint registration) is adapted in this one file. The calls: `Ring::open`,
//! `Ring::open_or_create` with a `RingSpec` (attach or create), `Ring::type_trailer`,
//! `Ring::register` / `Ring::register_durable` and `Registration::publish` (the exporter
//! is a registered consumer: its position holds a lossless queue's producers back),
//! `Ring::start_index` / `Ring::next_index`, `Ring::read_deadline` (read one reservation,
//! or a loss), and `Ring::send_bytes` (one message).

use std::time::Duration;

use fastipc::Deadline;
use fastipc::error::ShmError;
use fastipc::queue::Role;
use fastipc::queue::{
    Mode, OpenError, RecvTimeoutError, Registration, Ring, RingSpec, WaitStrategy,
};

use crate::error::BridgeError;
use crate::ty::MessageType;

/// Losses met while reading the source queue, since they were last taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Losses {
    /// Messages overwritten before the exporter read them (`Lagged`).
    pub(crate) lagged: u64,
    /// Messages abandoned by dead producers (`Abandoned`; never on a queue without the
    /// endpoint table).
    pub(crate) abandoned: u64,
    /// Corrupt slots skipped.
    pub(crate) corrupt: u64,
    /// Messages read but not published: no subscriber matched.
    pub(crate) unmatched: u64,
}

impl Losses {
    pub(crate) fn any(&self) -> bool {
        *self != Losses::default()
    }
}

fn queue_error(queue: &str, source: OpenError) -> BridgeError {
    BridgeError::Queue {
        queue: queue.to_owned(),
        source: Box::new(source),
    }
}

/// The type a queue records (its fingerprint and name when it has a type trailer).
fn type_of(ring: &Ring) -> MessageType {
    let trailer = ring.type_trailer();
    MessageType {
        element_size: ring.element_size(),
        fingerprint: trailer.as_ref().map_or(0, |t| t.fingerprint),
        name: trailer.map(|t| t.name).unwrap_or_default(),
    }
}

/// The queue an exporter reads.
pub(crate) struct Source {
    ring: Ring,
}

impl Source {
    /// Attaches to the existing queue `name`. With `want`, the queue must hold that type.
    pub(crate) fn open(
        name: &str,
        want: Option<&MessageType>,
    ) -> Result<(Source, MessageType), BridgeError> {
        let ring =
            Ring::open(name, want.map(|t| t.element_size)).map_err(|e| queue_error(name, e))?;
        let found = type_of(&ring);
        if let Some(want) = want
            && !found.accepts(want)
        {
            return Err(BridgeError::TypeMismatch {
                queue: name.to_owned(),
                local: Box::new(found),
                remote: Box::new(want.clone()),
            });
        }
        Ok((Source { ring }, found))
    }

    /// Registers a consumer of the queue and returns its reader. With `durable`, the
    /// durable consumer of that key: taken over where the last exporter of the key
    /// stopped if there is one (`Ring::register_durable`). Else, and for a new one, it
    /// starts "now": at the head of a lossy queue, at the lossless floor (what the
    /// registered consumers have not read yet) of a lossless one. A queue made by a peer
    /// has no endpoint table: the reader is then unregistered.
    pub(crate) fn reader(&self, durable: Option<u64>) -> Result<Reader<'_>, BridgeError> {
        let ring = &self.ring;
        let start = match ring.mode() {
            Mode::Lossless => ring.start_index(),
            _ => ring.next_index(),
        };
        let name = ring.name().unwrap_or("");
        let registration = match durable {
            Some(key) => ring.register_durable(key, start),
            None => ring.register(Role::Consumer, start),
        }
        .map_err(|e| queue_error(name, e))?;
        let cursor = registration.as_ref().map_or(start, Registration::position);
        Ok(Reader {
            ring,
            registration,
            cursor,
            read: 0,
            scratch: Vec::new(),
            // A short spin, then sleep on the queue's wake word: the machine is shared.
            wait: WaitStrategy::default()
                .spins(64)
                .yields(4)
                .poll_interval(Duration::from_millis(1)),
        })
    }
}

/// A registered reader of a [`Source`], with its cursor.
pub(crate) struct Reader<'a> {
    ring: &'a Ring,
    registration: Option<Registration<'a>>,
    cursor: u64,
    /// Messages read.
    read: u64,
    scratch: Vec<u8>,
    wait: WaitStrategy,
}

impl Reader<'_> {
    /// The index of the next message to read.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Publishes `position` (at most the cursor) as taken: a lossless queue's producers
    /// may then overwrite what lies before it. Never moves the position back.
    pub(crate) fn release_to(&mut self, position: u64) {
        let position = position.min(self.cursor);
        if let Some(r) = self.registration.as_mut()
            && position > r.position()
        {
            r.publish(position, self.read);
        }
    }

    /// Reads the next reservation, waiting at most `wait`; appends its bytes to `out`
    /// and returns `(first index, messages)`, or `None` when nothing came (losses met on
    /// the way are added to `losses`).
    pub(crate) fn read(
        &mut self,
        out: &mut Vec<u8>,
        wait: Duration,
        losses: &mut Losses,
    ) -> Option<(u64, usize)> {
        let deadline = Deadline::after(wait);
        match self
            .ring
            .read_deadline(&mut self.cursor, &mut self.scratch, &self.wait, deadline)
        {
            Ok(info) => {
                out.extend_from_slice(&self.scratch);
                self.read += info.count as u64;
                Some((info.index, info.count))
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                losses.lagged += n;
                None
            }
            Err(RecvTimeoutError::Abandoned(n)) => {
                losses.abandoned += n;
                None
            }
            Err(RecvTimeoutError::Corrupt { .. }) => {
                losses.corrupt += 1;
                None
            }
            // Timeout, and Disconnected (every producer left): keep waiting for producers
            // to come back.
            Err(_) => None,
        }
    }
}

/// Removes the durable consumer `key` of queue `name` (it must not be held by a live
/// process); whether there was one.
pub(crate) fn release_durable(name: &str, key: u64) -> Result<bool, BridgeError> {
    let ring = Ring::open(name, None).map_err(|e| queue_error(name, e))?;
    ring.release_durable(key).map_err(|e| queue_error(name, e))
}

/// The queue an importer writes.
pub(crate) struct Sink {
    ring: Ring,
    ty: MessageType,
}

impl Sink {
    /// Attaches to `name` (it must accept `ty`), or creates it for `capacity` messages of
    /// `ty` (recording its fingerprint and name when known), lossless when asked.
    pub(crate) fn open_or_create(
        name: &str,
        ty: &MessageType,
        capacity: usize,
        lossless: bool,
    ) -> Result<Sink, BridgeError> {
        let ring = match Ring::open(name, None) {
            Ok(ring) => ring,
            Err(OpenError::Shm(ShmError::NotFound { .. })) => {
                let mode = if lossless {
                    Mode::Lossless
                } else {
                    Mode::Lossy
                };
                let mut spec = RingSpec::new(capacity, ty.element_size).with_mode(mode);
                if ty.fingerprint != 0 {
                    spec = spec.with_type(&ty.name, ty.fingerprint);
                }
                Ring::open_or_create(name, &spec).map_err(|e| queue_error(name, e))?
            }
            Err(e) => return Err(queue_error(name, e)),
        };
        let found = type_of(&ring);
        if !found.accepts(ty) {
            return Err(BridgeError::TypeMismatch {
                queue: name.to_owned(),
                local: Box::new(found),
                remote: Box::new(ty.clone()),
            });
        }
        Ok(Sink { ring, ty: found })
    }

    /// Attaches to the existing queue `name`, whatever its type; `None` if it does not
    /// exist.
    pub(crate) fn open_existing(name: &str) -> Result<Option<Sink>, BridgeError> {
        match Ring::open(name, None) {
            Ok(ring) => {
                let ty = type_of(&ring);
                Ok(Some(Sink { ring, ty }))
            }
            Err(OpenError::Shm(ShmError::NotFound { .. })) => Ok(None),
            Err(e) => Err(queue_error(name, e)),
        }
    }

    /// The type the queue holds.
    pub(crate) fn ty(&self) -> &MessageType {
        &self.ty
    }

    /// Publishes each message of `data` (whole elements) on its own, in order. The
    /// sends block while a lossless queue is full (lossy queues never block).
    pub(crate) fn write(&self, data: &[u8]) -> Result<(), BridgeError> {
        for msg in data.chunks_exact(self.ty.element_size) {
            self.ring
                .send_bytes(msg)
                .map_err(|source| BridgeError::Send {
                    queue: self.ring.name().unwrap_or("").to_owned(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }
}
