//! Export: a registered consumer of a local queue publishes every message, in batches,
//! on a key.
//!
//! Its position in the queue's endpoint table (what holds a lossless queue's producers
//! back) is what it has handed to Zenoh; with `resume`, it is a durable consumer whose
//! position is what an importer acknowledged having written ([`crate::wire::Ack`]), so
//! that an exporter restarted after a crash resumes there and loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zenoh::Wait;
use zenoh::qos::CongestionControl;

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::local::{Losses, Reader, Source};
use crate::stats::{ExportStats, LiveExport, add};
use crate::ty::MessageType;
use crate::wire::{ACK_SUFFIX, Ack, BatchHeader, FLAG_ACK, FLAG_LOSSLESS, NO_INDEX};
use crate::worker::Worker;

/// How long an idle exporter waits on the queue before checking for a stop.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How long a lossless exporter with no matching subscriber sleeps between two looks.
const UNMATCHED_WAIT: Duration = Duration::from_millis(5);

/// A running export; stop it with [`ExportHandle::stop`] (dropping it stops it too).
#[derive(Debug)]
pub struct ExportHandle {
    stats: Arc<LiveExport>,
    matched: Arc<AtomicBool>,
    ty: MessageType,
    worker: Worker,
}

impl ExportHandle {
    /// The counters so far.
    pub fn stats(&self) -> ExportStats {
        self.stats.snapshot()
    }

    /// Whether a Zenoh subscriber (an importer) currently matches the key.
    pub fn matched(&self) -> bool {
        self.matched.load(Ordering::Relaxed)
    }

    /// The type of the exported queue.
    pub fn message_type(&self) -> &MessageType {
        &self.ty
    }

    /// Whether the export stopped on its own (an error; see [`ExportHandle::stop`]).
    pub fn is_finished(&self) -> bool {
        self.worker.is_finished()
    }

    /// Publishes what is batched, stops, and returns the export's error if it failed.
    pub fn stop(mut self) -> Result<ExportStats, BridgeError> {
        self.worker.finish()?;
        Ok(self.stats())
    }
}

/// Starts exporting queue `queue` (which must exist, and hold `want` when given) to
/// `key`. The exporter reads from now on, or, with `config.resume`, from where the last
/// exporter of `key` stopped.
pub(crate) fn start(
    queue: &str,
    want: Option<MessageType>,
    key: &str,
    config: &BridgeConfig,
) -> Result<ExportHandle, BridgeError> {
    let (source, ty) = Source::open(queue, want.as_ref())?;
    let key_expr = zenoh::key_expr::KeyExpr::try_from(key.to_owned()).map_err(|e| {
        BridgeError::InvalidKey {
            key: key.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let session = zenoh::open(config.to_zenoh()?)
        .wait()
        .map_err(BridgeError::zenoh)?;
    let congestion = if config.lossless {
        CongestionControl::Block
    } else {
        CongestionControl::Drop
    };
    // Zenoh publishers are reliable by default; lossless adds blocking congestion control.
    let publisher = session
        .declare_publisher(key_expr)
        .congestion_control(congestion)
        .wait()
        .map_err(BridgeError::zenoh)?;
    let matched = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&matched);
    // Relaxed: a display flag; nothing else is published through it.
    publisher
        .matching_listener()
        .callback(move |status| flag.store(status.matching(), Ordering::Relaxed))
        .background()
        .wait()
        .map_err(BridgeError::zenoh)?;
    let source_id = source_id(queue);
    // With `resume`: the highest index an importer acknowledged (0: none yet).
    let acked = Arc::new(AtomicU64::new(0));
    if config.resume {
        let seen = Arc::clone(&acked);
        session
            .declare_subscriber(format!("{key}{ACK_SUFFIX}"))
            .callback(move |sample| {
                if let Some(ack) = Ack::decode(&sample.payload().to_bytes())
                    && ack.source == source_id
                {
                    // Relaxed: a monotonic hint; the exporter thread only compares it.
                    seen.fetch_max(ack.next_index, Ordering::Relaxed);
                }
            })
            .background()
            .wait()
            .map_err(BridgeError::zenoh)?;
    }
    let stats = Arc::new(LiveExport::default());
    let mut flags = if config.lossless { FLAG_LOSSLESS } else { 0 };
    if config.resume {
        flags |= FLAG_ACK;
    }
    let mut run = Run {
        header: BatchHeader {
            flags,
            element_size: ty.element_size as u32,
            fingerprint: ty.fingerprint,
            source: source_id,
            stream: stream_id(),
            type_name: ty.name.clone(),
            ..BatchHeader::default()
        },
        max_bytes: config.max_batch_bytes,
        max_delay: config.max_delay,
        lossless: config.lossless,
        matched: Arc::clone(&matched),
        acked: config.resume.then(|| Arc::clone(&acked)),
        stats: Arc::clone(&stats),
    };
    let durable = config.resume.then(|| durable_key(key));
    // The registration borrows the queue, so it is made on the export thread, which
    // reports whether it could.
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let worker = Worker::spawn("fastipc-export", move |stop| {
        let result = match source.reader(durable) {
            Ok(mut reader) => {
                let _ = ready_tx.send(None);
                run.run(&mut reader, stop, |payload| {
                    publisher.put(payload).wait().map_err(BridgeError::zenoh)
                })
            }
            Err(e) => {
                let _ = ready_tx.send(Some(e));
                Ok(())
            }
        };
        let _ = session.close().wait();
        result
    })?;
    match ready_rx.recv() {
        // The thread ended at once: dropping `worker` joins it.
        Ok(Some(e)) => return Err(e),
        Ok(None) => {}
        Err(_) => return Err(BridgeError::Panicked),
    }
    Ok(ExportHandle {
        stats,
        matched,
        ty,
        worker,
    })
}

struct Run {
    header: BatchHeader,
    max_bytes: usize,
    max_delay: Duration,
    /// Lossless: no reading while no subscriber matches (the queue's producers wait).
    lossless: bool,
    /// Whether a subscriber matches the key (Zenoh's matching status).
    matched: Arc<AtomicBool>,
    /// With `resume`: the highest index an importer acknowledged.
    acked: Option<Arc<AtomicU64>>,
    stats: Arc<LiveExport>,
}

impl Run {
    fn run(
        &mut self,
        reader: &mut Reader<'_>,
        stop: &AtomicBool,
        mut publish: impl FnMut(Vec<u8>) -> Result<(), BridgeError>,
    ) -> Result<(), BridgeError> {
        let mut data = Vec::with_capacity(self.max_bytes + 4096);
        let mut count = 0usize;
        let mut first = NO_INDEX;
        let mut opened: Option<Instant> = None;
        // Losses to report with the next batch: only those met before its first message.
        let mut losses = Losses::default();
        while !stop.load(Ordering::Relaxed) {
            self.release(reader, count);
            if self.lossless && count == 0 && !self.matched.load(Ordering::Relaxed) {
                // Nobody would receive what is read now: leave it in the queue, whose
                // producers wait (a lossless queue) for this exporter's position.
                std::thread::sleep(UNMATCHED_WAIT);
                continue;
            }
            let wait = opened.map_or(IDLE_WAIT, |t| self.max_delay.saturating_sub(t.elapsed()));
            let mut met = Losses::default();
            // A read appends messages or meets losses, never both.
            let got = reader.read(&mut data, wait, &mut met);
            if met.any() {
                // A loss after some messages closes their batch first, so that counts
                // travel in order with the data.
                if count > 0 {
                    self.flush(&mut data, &mut count, &mut first, &mut losses, &mut publish)?;
                    opened = None;
                }
                losses.lagged += met.lagged;
                losses.abandoned += met.abandoned;
                losses.corrupt += met.corrupt;
                losses.unmatched += met.unmatched;
            }
            if let Some((index, n)) = got {
                if count == 0 {
                    first = index;
                    opened = Some(Instant::now());
                }
                count += n;
            }
            let full = data.len() >= self.max_bytes || count >= u32::MAX as usize / 2;
            let due = opened.is_some_and(|t| t.elapsed() >= self.max_delay);
            if full || due || (count == 0 && losses.any()) {
                self.flush(&mut data, &mut count, &mut first, &mut losses, &mut publish)?;
                opened = None;
            }
        }
        if count > 0 || losses.any() {
            self.flush(&mut data, &mut count, &mut first, &mut losses, &mut publish)?;
        }
        self.release(reader, count);
        Ok(())
    }

    /// Publishes the reader's position: with acknowledgements, the highest index an
    /// importer acknowledged; else, when no batch is open, the cursor (everything read
    /// was handed to Zenoh, or counted as lost).
    fn release(&self, reader: &mut Reader<'_>, open: usize) {
        match &self.acked {
            // Relaxed: see the subscriber's callback.
            Some(acked) => reader.release_to(acked.load(Ordering::Relaxed)),
            None if open == 0 => reader.release_to(reader.cursor()),
            None => {}
        }
    }

    fn flush(
        &mut self,
        data: &mut Vec<u8>,
        count: &mut usize,
        first: &mut u64,
        losses: &mut Losses,
        publish: &mut impl FnMut(Vec<u8>) -> Result<(), BridgeError>,
    ) -> Result<(), BridgeError> {
        // Relaxed: a status flag; a stale value misjudges one batch at a status change.
        if !self.matched.load(Ordering::Relaxed) {
            // Nobody subscribes: the batch is not published but counted, and the count
            // travels with the first batch published once someone matches. The other
            // losses wait for that batch too.
            losses.unmatched += *count as u64;
            add(&self.stats.unmatched, *count as u64);
            data.clear();
            *count = 0;
            *first = NO_INDEX;
            return Ok(());
        }
        let h = &mut self.header;
        h.count = *count as u32;
        h.first_index = *first;
        h.lagged = losses.lagged;
        h.abandoned = losses.abandoned;
        h.corrupt = losses.corrupt;
        h.unmatched = losses.unmatched;
        let mut payload = Vec::with_capacity(h.len() + data.len());
        h.encode_into(&mut payload);
        payload.extend_from_slice(data);
        publish(payload)?;
        h.seq += *count as u64;
        let s = &self.stats;
        add(&s.batches, 1);
        add(&s.messages, *count as u64);
        add(&s.bytes, data.len() as u64);
        add(&s.lagged, losses.lagged);
        add(&s.abandoned, losses.abandoned);
        add(&s.corrupt, losses.corrupt);
        data.clear();
        *count = 0;
        *first = NO_INDEX;
        *losses = Losses::default();
        Ok(())
    }
}

/// The identity of a source queue: FNV-1a of `boot id/host/queue`. The same for every
/// exporter of the queue until the machine reboots (when /dev/shm, and so the queue's
/// indices, start over), and different on two machines even when they share a hostname
/// (the kernel draws a random boot id at every boot). Without a boot id (not Linux's
/// /proc), the process id and start time stand in: unique, but then a restarted exporter
/// is a new source.
fn source_id(queue: &str) -> u64 {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned());
    let boot = read("/proc/sys/kernel/random/boot_id").unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("pid {} at {nanos}", std::process::id())
    });
    let host = read("/proc/sys/kernel/hostname").unwrap_or_default();
    source_id_of(&boot, &host, queue)
}

fn source_id_of(boot: &str, host: &str, queue: &str) -> u64 {
    fnv(
        fastipc::message::fingerprint::SEED,
        format!("{boot}/{host}/{queue}").as_bytes(),
    )
}

/// Removes the kept position of the exporters of `queue` to `key` ([`crate::forget`]).
pub(crate) fn forget(queue: &str, key: &str) -> Result<bool, BridgeError> {
    crate::local::release_durable(queue, durable_key(key))
}

/// The durable-consumer key of the exporters of Zenoh key `key`: FNV-1a of the key.
fn durable_key(key: &str) -> u64 {
    fnv(fastipc::message::fingerprint::SEED, key.as_bytes())
}

/// A fresh identity for this exporter run (time, process id and a counter, mixed).
fn stream_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = fnv(fastipc::message::fingerprint::SEED, &nanos.to_le_bytes());
    h = fnv(h, &std::process::id().to_le_bytes());
    h = fnv(h, &RUNS.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.max(1)
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hosts_with_one_hostname_are_two_sources() {
        let a = "8d3b1c2e-0f4a-4a57-9c1e-3b5f6a7d8e90";
        let b = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a10";
        assert_ne!(
            source_id_of(a, "box", "ticks"),
            source_id_of(b, "box", "ticks")
        );
        assert_ne!(
            source_id_of(a, "box", "ticks"),
            source_id_of(a, "box", "other")
        );
        // Stable for one machine and queue (a restarted exporter is the same source).
        assert_eq!(
            source_id_of(a, "box", "ticks"),
            source_id_of(a, "box", "ticks")
        );
        assert_eq!(source_id("ticks"), source_id("ticks"));
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(
            source_id("ticks"),
            source_id_of(boot.trim(), host.trim(), "ticks")
        );
    }
}
