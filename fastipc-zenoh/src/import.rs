//! Import: batches received on a key are written, message by message, into a local
//! queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use zenoh::Wait;
use zenoh::handlers::FifoChannel;

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::local::Sink;
use crate::stats::{ImportStats, LiveImport, add};
use crate::ty::MessageType;
use crate::wire::{ACK_SUFFIX, Ack, BatchHeader, FLAG_ACK, NO_INDEX};
use crate::worker::Worker;

/// How long the importer waits for a batch before checking for a stop.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Batches Zenoh may queue for the importer; when full, Zenoh's receiving thread waits
/// (back-pressure towards a blocking exporter).
const CHANNEL: usize = 64;

/// A running import; stop it with [`ImportHandle::stop`] (dropping it stops it too).
#[derive(Debug)]
pub struct ImportHandle {
    stats: Arc<LiveImport>,
    worker: Worker,
}

impl ImportHandle {
    /// The counters so far.
    pub fn stats(&self) -> ImportStats {
        self.stats.snapshot()
    }

    /// Whether the import stopped on its own (a refused type or an error; the reason
    /// comes from [`ImportHandle::stop`]).
    pub fn is_finished(&self) -> bool {
        self.worker.is_finished()
    }

    /// Stops, and returns the import's error if it failed (e.g. a batch of another type:
    /// [`BridgeError::TypeMismatch`]).
    pub fn stop(mut self) -> Result<ImportStats, BridgeError> {
        self.worker.finish()?;
        Ok(self.stats())
    }
}

/// Starts importing `key` into `queue`. With `ty` (typed, or an element size given), the
/// queue is opened or created at once and must accept it; without, an existing queue is
/// used as it is and a missing one is created for the type of the first batch.
pub(crate) fn start(
    key: &str,
    queue: &str,
    ty: Option<MessageType>,
    config: &BridgeConfig,
) -> Result<ImportHandle, BridgeError> {
    let sink = match &ty {
        Some(ty) => Some(Sink::open_or_create(
            queue,
            ty,
            config.capacity,
            config.lossless,
        )?),
        None => Sink::open_existing(queue)?,
    };
    let key_expr = zenoh::key_expr::KeyExpr::try_from(key.to_owned()).map_err(|e| {
        BridgeError::InvalidKey {
            key: key.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let session = zenoh::open(config.to_zenoh()?)
        .wait()
        .map_err(BridgeError::zenoh)?;
    let subscriber = session
        .declare_subscriber(key_expr)
        .with(FifoChannel::new(CHANNEL))
        .wait()
        .map_err(BridgeError::zenoh)?;
    let stats = Arc::new(LiveImport::default());
    let mut state = Importer {
        queue: queue.to_owned(),
        capacity: config.capacity,
        lossless: config.lossless,
        sink,
        sources: HashMap::new(),
        stats: Arc::clone(&stats),
    };
    let worker = Worker::spawn("fastipc-import", move |stop| {
        let result = (|| {
            while !stop.load(Ordering::Relaxed) {
                match subscriber.recv_timeout(IDLE_WAIT) {
                    Ok(Some(sample)) => {
                        if let Some(ack) = state.accept(&sample.payload().to_bytes())? {
                            // Best effort (congestion control Drop): acknowledgements
                            // are cumulative, the next one covers a lost one.
                            let key = format!("{}{ACK_SUFFIX}", sample.key_expr());
                            session
                                .put(key, ack.encode().to_vec())
                                .wait()
                                .map_err(BridgeError::zenoh)?;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => return Err(BridgeError::zenoh(e)),
                }
            }
            Ok(())
        })();
        drop(subscriber);
        let _ = session.close().wait();
        result
    })?;
    Ok(ImportHandle { stats, worker })
}

/// What the importer remembers of a source queue.
struct SourceState {
    stream: u64,
    /// The next message sequence number expected from `stream`.
    next_seq: u64,
    /// The source index after the last message received (`NO_INDEX`: none yet).
    next_index: u64,
    /// Messages of `stream` below this source index were received from an earlier
    /// stream (a resumed exporter sends them again): they are dropped.
    dedup_until: u64,
}

pub(crate) struct Importer {
    queue: String,
    capacity: usize,
    lossless: bool,
    sink: Option<Sink>,
    sources: HashMap<u64, SourceState>,
    stats: Arc<LiveImport>,
}

impl Importer {
    /// Checks, accounts and writes one batch; returns the acknowledgement to send when
    /// the exporter asked for them.
    pub(crate) fn accept(&mut self, payload: &[u8]) -> Result<Option<Ack>, BridgeError> {
        let Ok((h, data)) = BatchHeader::decode(payload) else {
            add(&self.stats.malformed, 1);
            return Ok(None);
        };
        let remote = MessageType {
            element_size: h.element_size as usize,
            fingerprint: h.fingerprint,
            name: h.type_name.clone(),
        };
        if self.sink.is_none() {
            self.sink = Some(Sink::open_or_create(
                &self.queue,
                &remote,
                self.capacity,
                self.lossless,
            )?);
        }
        let sink = self.sink.as_ref().expect("opened above");
        if !sink.ty().accepts(&remote) {
            return Err(BridgeError::TypeMismatch {
                queue: self.queue.clone(),
                local: Box::new(sink.ty().clone()),
                remote: Box::new(remote),
            });
        }
        let repeated = self.repeated(&h);
        let fresh = &data[repeated as usize * h.element_size as usize..];
        sink.write(fresh)?;
        self.account(&h);
        let s = &self.stats;
        add(&s.batches, 1);
        add(&s.messages, u64::from(h.count) - repeated);
        add(&s.bytes, fresh.len() as u64);
        add(&s.duplicates, repeated);
        let ack = match self.sources.get(&h.source) {
            Some(st) if h.flags & FLAG_ACK != 0 && st.next_index != NO_INDEX => Some(Ack {
                source: h.source,
                stream: h.stream,
                next_index: st.next_index,
            }),
            _ => None,
        };
        Ok(ack)
    }

    /// How many of the batch's first messages were already received from an earlier
    /// stream of its source (a resumed exporter sends again what was not acknowledged).
    fn repeated(&self, h: &BatchHeader) -> u64 {
        let Some(st) = self.sources.get(&h.source) else {
            return 0;
        };
        if h.first_index == NO_INDEX || st.next_index == NO_INDEX {
            return 0;
        }
        let until = if st.stream == h.stream {
            st.dedup_until
        } else {
            st.next_index
        };
        until.saturating_sub(h.first_index).min(u64::from(h.count))
    }

    /// Adds the batch's forwarded losses, and the gaps it reveals, to the counters.
    fn account(&mut self, h: &BatchHeader) {
        let s = &self.stats;
        add(&s.upstream_lagged, h.lagged);
        add(&s.upstream_abandoned, h.abandoned);
        add(&s.upstream_corrupt, h.corrupt);
        add(&s.unmatched, h.unmatched);
        let end_index = |h: &BatchHeader| {
            if h.first_index == NO_INDEX {
                NO_INDEX
            } else {
                h.first_index + u64::from(h.count)
            }
        };
        match self.sources.get_mut(&h.source) {
            Some(st) if st.stream == h.stream => {
                // Batches of one stream arrive in order (one publisher, reliable links):
                // a jump in `seq` is batches Zenoh dropped.
                add(&s.dropped, h.seq.saturating_sub(st.next_seq));
                st.next_seq = st.next_seq.max(h.seq + u64::from(h.count));
                if h.first_index != NO_INDEX {
                    st.next_index = st.next_index.max(end_index(h));
                }
            }
            Some(st) => {
                // A new exporter run on a source already seen: what lies between the
                // last index received and this batch's first was never published (or was
                // published while this importer could not receive it).
                // Less what the batch itself reports lost on the way (counted above).
                if st.next_index != NO_INDEX
                    && h.first_index != NO_INDEX
                    && h.first_index > st.next_index
                {
                    let reported = h.lagged + h.abandoned + h.unmatched;
                    add(
                        &s.restart_gap,
                        (h.first_index - st.next_index).saturating_sub(reported),
                    );
                }
                // A resumed exporter starts at or below the last index received: what
                // lies below it is dropped, now and in the stream's next batches.
                let (next_index, dedup_until) = match (end_index(h), st.next_index) {
                    (end, NO_INDEX) => (end, 0),
                    (NO_INDEX, before) => (before, before),
                    (end, before) => (end.max(before), before),
                };
                *st = SourceState {
                    stream: h.stream,
                    next_seq: h.seq + u64::from(h.count),
                    next_index,
                    dedup_until,
                };
            }
            None => {
                self.sources.insert(
                    h.source,
                    SourceState {
                        stream: h.stream,
                        next_seq: h.seq + u64::from(h.count),
                        next_index: end_index(h),
                        dedup_until: 0,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BatchHeader;

    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = fastipc::queue::remove(&self.0);
        }
    }

    fn batch(
        stream: u64,
        seq: u64,
        first: u64,
        count: u32,
        lagged: u64,
        fingerprint: u64,
    ) -> Vec<u8> {
        let h = BatchHeader {
            element_size: 8,
            count,
            fingerprint,
            source: 1,
            stream,
            seq,
            first_index: first,
            lagged,
            type_name: "T".into(),
            ..BatchHeader::default()
        };
        let mut out = Vec::new();
        h.encode_into(&mut out);
        for i in 0..u64::from(count) {
            out.extend_from_slice(&(first + i).to_le_bytes());
        }
        out
    }

    fn importer(name: &str) -> Importer {
        Importer {
            queue: name.to_owned(),
            capacity: 64,
            lossless: false,
            sink: None,
            sources: HashMap::new(),
            stats: Arc::new(LiveImport::default()),
        }
    }

    #[test]
    fn gaps_forwarded_losses_and_restarts_are_counted() {
        let name = format!("fipct-zimp-{}-a", std::process::id());
        let _rm = Remove(name.clone());
        let mut imp = importer(&name);
        imp.accept(&batch(100, 0, 0, 2, 0, 5)).unwrap(); // indices 0, 1
        imp.accept(&batch(100, 5, 5, 1, 2, 5)).unwrap(); // seq 2..5 never came: 3 dropped
        imp.accept(&batch(200, 0, 10, 1, 0, 5)).unwrap(); // restart: indices 6..10 missed
        imp.accept(b"not a batch").unwrap();
        let s = imp.stats.snapshot();
        assert_eq!((s.batches, s.messages, s.bytes), (3, 4, 32));
        assert_eq!(
            (s.dropped, s.restart_gap, s.upstream_lagged, s.malformed),
            (3, 4, 2, 1)
        );
        assert_eq!(s.lost(), 9);
        // The queue was created for the first batch's type and holds the four messages.
        let ring = fastipc::queue::Ring::open(&name, Some(8)).unwrap();
        assert_eq!(ring.type_trailer().unwrap().fingerprint, 5);
        let (mut cursor, mut buf, mut seen) = (0, Vec::new(), Vec::new());
        while ring.read(&mut cursor, &mut buf).is_ok() {
            seen.push(u64::from_le_bytes(buf[..8].try_into().unwrap()));
        }
        assert_eq!(seen, [0, 1, 5, 10]);
    }

    fn with_ack(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes[5] |= crate::wire::FLAG_ACK;
        bytes
    }

    #[test]
    fn a_resumed_stream_s_repeats_are_dropped_and_acknowledged() {
        let name = format!("fipct-zimp-{}-c", std::process::id());
        let _rm = Remove(name.clone());
        let mut imp = importer(&name);
        let ack = |stream, next_index| {
            Some(Ack {
                source: 1,
                stream,
                next_index,
            })
        };
        // Indices 0..4 from the first exporter run.
        let got = imp.accept(&with_ack(batch(100, 0, 0, 4, 0, 5))).unwrap();
        assert_eq!(got, ack(100, 4));
        // A resumed run starts at 1 (index 4 had not been acknowledged to it): its first
        // batch is all repeats, its second half (2, 3 again; 4, 5 new).
        let got = imp.accept(&with_ack(batch(200, 0, 1, 1, 0, 5))).unwrap();
        assert_eq!(got, ack(200, 4));
        let got = imp.accept(&with_ack(batch(200, 1, 2, 4, 0, 5))).unwrap();
        assert_eq!(got, ack(200, 6));
        // Then on as usual.
        imp.accept(&with_ack(batch(200, 5, 6, 1, 0, 5))).unwrap();
        // No acknowledgement unless asked for.
        assert_eq!(imp.accept(&batch(200, 6, 7, 1, 0, 5)).unwrap(), None);
        let s = imp.stats.snapshot();
        assert_eq!((s.messages, s.duplicates, s.lost()), (8, 3, 0), "{s:?}");
        let ring = fastipc::queue::Ring::open(&name, Some(8)).unwrap();
        let (mut cursor, mut buf, mut seen) = (0, Vec::new(), Vec::new());
        while ring.read(&mut cursor, &mut buf).is_ok() {
            seen.push(u64::from_le_bytes(buf[..8].try_into().unwrap()));
        }
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn unmatched_counts_are_added_and_not_counted_twice_as_a_restart_gap() {
        let name = format!("fipct-zimp-{}-d", std::process::id());
        let _rm = Remove(name.clone());
        let mut imp = importer(&name);
        imp.accept(&batch(100, 0, 0, 2, 0, 5)).unwrap();
        // A new run read 2..12 while nobody matched (unmatched 10), then published 12.
        let mut b = batch(200, 0, 12, 1, 0, 5);
        b[80..88].copy_from_slice(&10u64.to_le_bytes());
        imp.accept(&b).unwrap();
        let s = imp.stats.snapshot();
        assert_eq!((s.unmatched, s.restart_gap, s.lost()), (10, 0, 10), "{s:?}");
    }

    #[test]
    fn a_batch_of_another_type_is_refused_naming_both() {
        let name = format!("fipct-zimp-{}-b", std::process::id());
        let _rm = Remove(name.clone());
        let mut imp = importer(&name);
        imp.accept(&batch(1, 0, 0, 1, 0, 5)).unwrap();
        let err = imp.accept(&batch(1, 1, 1, 1, 0, 6)).unwrap_err();
        match &err {
            BridgeError::TypeMismatch { local, remote, .. } => {
                assert_eq!((local.fingerprint, remote.fingerprint), (5, 6));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(imp.stats.snapshot().messages, 1);
    }
}
