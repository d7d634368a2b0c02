//! `fastipc send` and `fastipc recv`: test traffic on a queue, in a pattern any peer in
//! any language can produce and verify element by element.
//!
//! # The pattern
//! Element number `seq` (0, 1, 2, ...) of `B >= 8` bytes holds `seq` as a little-endian
//! u64 in bytes 0..8, and at every byte `j >= 8` the value `(seq × 7 + j) mod 256`.
//! In Python: `struct.pack("<Q", seq) + bytes((seq * 7 + j) % 256 for j in range(8, B))`.
//!
//! # Verification
//! `recv` checks every element it gets ([`verify`]) and counts ([`Tally`]):
//! - *exclusive* reading (its own cursor) expects `0, 1, 2, ..., N-1` in order: a jump
//!   forward is that many elements *lost* (a producer lapped the reader, or they were
//!   overwritten before it attached), a sequence number that goes back or lies past
//!   `N-1` is *out of order*. It ends when every number up to `N-1` is accounted for.
//! - *shared* reading (`--shared-cursor`, work stealing) gets some of the elements: the
//!   numbers it sees must only increase, and the elements the queue reports as lost
//!   (`Lagged`) to this reader count as lost. It ends after `N` elements. A read claims a
//!   whole reservation (a `send --batch K` writes `K` elements in one), so the read that
//!   reaches `N` may hold more: those are still checked and counted as *beyond
//!   `--count`*, and the run fails, because no other reader of the cursor will ever get
//!   them (the error says which sequence numbers they were).
//!
//! A run is a success when exactly `N` elements arrived intact, in order, with none lost
//! and none claimed beyond `N`.

use std::fmt;
use std::time::{Duration, Instant};

use fastipc::Deadline;
use fastipc::error::{OpenError, RecvTimeoutError, ShmError};
use fastipc::queue::{Mode as QueueMode, Ring, RingSpec, Role, SharedCursor, WaitStrategy};

use crate::error::{CliError, number, secs};
use crate::progress::{Progress, UPDATE_EVERY};

/// Bytes of the sequence number at the start of each element: the smallest element.
pub const SEQ_LEN: usize = 8;

/// The capacity `send` gives a queue it creates when `--capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Refuses element sizes the pattern does not fit in.
pub fn check_element_size(elem_size: usize) -> Result<(), CliError> {
    if elem_size < SEQ_LEN {
        return Err(CliError::ElementTooSmall(elem_size));
    }
    Ok(())
}

/// Writes element `seq` of the pattern into `out` (`out.len() >= 8`).
///
/// ```
/// let mut e = [0u8; 12];
/// fastipc_cli::traffic::fill(300, &mut e);
/// assert_eq!(&e[..8], &300u64.to_le_bytes());
/// assert_eq!(e[8], ((300 * 7 + 8) % 256) as u8);
/// assert_eq!(fastipc_cli::traffic::verify(&e), Ok(300));
/// ```
pub fn fill(seq: u64, out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(SEQ_LEN);
    head.copy_from_slice(&seq.to_le_bytes());
    let base = seq.wrapping_mul(7);
    for (j, b) in rest.iter_mut().enumerate() {
        *b = pattern_byte(base, j + SEQ_LEN);
    }
}

/// Byte `j` of the element whose `seq × 7` is `base` (2^64 is a multiple of 256, so
/// wrapping arithmetic gives the true `mod 256`).
fn pattern_byte(base: u64, j: usize) -> u8 {
    base.wrapping_add(j as u64) as u8
}

/// What is wrong with an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Shorter than the sequence number.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// A payload byte differs from the pattern of the element's sequence number.
    Byte {
        /// The sequence number the element carries.
        seq: u64,
        /// The first offending byte.
        offset: usize,
        /// Its value.
        found: u8,
        /// The pattern's value.
        expected: u8,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::TooShort { len } => write!(f, "an element of {len} bytes"),
            Corruption::Byte {
                seq,
                offset,
                found,
                expected,
            } => write!(
                f,
                "element {seq}: byte {offset} is {found}, the pattern says {expected}"
            ),
        }
    }
}

/// Checks an element against the pattern; its sequence number when intact.
pub fn verify(elem: &[u8]) -> Result<u64, Corruption> {
    let Some(head) = elem.get(..SEQ_LEN) else {
        return Err(Corruption::TooShort { len: elem.len() });
    };
    let seq = u64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
    let base = seq.wrapping_mul(7);
    for (j, &found) in elem.iter().enumerate().skip(SEQ_LEN) {
        let expected = pattern_byte(base, j);
        if found != expected {
            return Err(Corruption::Byte {
                seq,
                offset: j,
                found,
                expected,
            });
        }
    }
    Ok(seq)
}

/// How a receiver shares the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Its own cursor: it should see every element.
    Exclusive,
    /// A shared cursor: it sees the elements it claims.
    Shared,
}

/// The receiver's counts; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    mode: Mode,
    count: u64,
    /// Exclusive: the next sequence number expected.
    next: u64,
    /// Shared: the last sequence number seen.
    last: Option<u64>,
    /// Elements that arrived intact and in order.
    pub received: u64,
    /// Elements that never arrived.
    pub lost: u64,
    /// Elements that arrived damaged (or corrupt slots skipped).
    pub corrupt: u64,
    /// Intact elements whose sequence number went back or lay out of range.
    pub out_of_order: u64,
    /// Times the queue reported that this reader was lapped.
    pub lag_events: u64,
    /// Shared: elements this reader claimed after the `count`-th (in the same
    /// reservation), which no other reader will get.
    pub beyond: u64,
    /// Shared: the lowest and highest intact sequence numbers among [`Tally::beyond`].
    pub beyond_seqs: Option<(u64, u64)>,
    /// The first thing that went wrong, described.
    pub first_problem: Option<String>,
}

impl Tally {
    /// A tally for `count` elements.
    pub fn new(count: u64, mode: Mode) -> Tally {
        Tally {
            mode,
            count,
            next: 0,
            last: None,
            received: 0,
            lost: 0,
            corrupt: 0,
            out_of_order: 0,
            lag_events: 0,
            beyond: 0,
            beyond_seqs: None,
            first_problem: None,
        }
    }

    fn problem(&mut self, what: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(what());
        }
    }

    /// Exclusive mode: accounts for sequence number `seq` arriving; whether it was the
    /// expected one or a later one (the gap is lost).
    fn advance_to(&mut self, seq: u64) -> bool {
        if seq < self.next || seq >= self.count {
            return false;
        }
        if seq > self.next {
            let (from, gap) = (self.next, seq - self.next);
            self.lost += gap;
            self.problem(|| format!("{gap} elements lost from {from} on"));
        }
        self.next = seq + 1;
        true
    }

    /// Counts one element as read from the queue.
    pub fn element(&mut self, elem: &[u8]) {
        match verify(elem) {
            Ok(seq) => {
                let in_order = match self.mode {
                    Mode::Exclusive => self.advance_to(seq),
                    Mode::Shared => {
                        let ok = self.last.is_none_or(|l| seq > l);
                        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
                        ok
                    }
                };
                if in_order {
                    self.received += 1;
                } else {
                    self.out_of_order += 1;
                    let expected = match self.mode {
                        Mode::Exclusive => format!("{}..{}", self.next, self.count),
                        Mode::Shared => "an increasing number".into(),
                    };
                    self.problem(|| format!("element {seq} arrived when {expected} was expected"));
                }
            }
            Err(c) => {
                self.corrupt += 1;
                if let (Mode::Exclusive, Corruption::Byte { seq, .. }) = (self.mode, c) {
                    self.advance_to(seq);
                }
                self.problem(|| c.to_string());
            }
        }
    }

    /// Shared: counts an element claimed in the same read as the `count`-th, after it.
    pub fn element_beyond_count(&mut self, elem: &[u8]) {
        self.beyond += 1;
        if let Ok(seq) = verify(elem) {
            self.beyond_seqs = Some(match self.beyond_seqs {
                Some((lo, hi)) => (lo.min(seq), hi.max(seq)),
                None => (seq, seq),
            });
        }
    }

    /// Counts a report that `n` elements were overwritten before this reader got them.
    /// Exclusive readers count the loss from the sequence numbers instead.
    pub fn lagged(&mut self, n: u64) {
        self.lag_events += 1;
        if self.mode == Mode::Shared {
            self.lost += n;
            self.problem(|| format!("{n} elements lost (lapped by the producers)"));
        }
    }

    /// Counts a control slot the queue found corrupt and skipped.
    pub fn corrupt_slot(&mut self, index: u64, size: u32) {
        self.corrupt += 1;
        self.problem(|| format!("corrupt slot at index {index} (size {size}) skipped"));
    }

    /// Whether every element is accounted for.
    pub fn is_done(&self) -> bool {
        match self.mode {
            Mode::Exclusive => self.next >= self.count,
            Mode::Shared => {
                self.received + self.lost + self.corrupt + self.out_of_order >= self.count
            }
        }
    }

    /// Elements accounted for so far (for the progress bar).
    pub fn position(&self) -> u64 {
        match self.mode {
            Mode::Exclusive => self.next,
            Mode::Shared => self.received + self.lost + self.corrupt + self.out_of_order,
        }
    }

    /// Whether exactly `count` elements arrived intact, in order, none lost (elements
    /// claimed beyond `count` are judged apart, see [`RecvSummary::verdict`]).
    pub fn is_perfect(&self) -> bool {
        self.received == self.count && self.lost == 0 && self.corrupt == 0 && self.out_of_order == 0
    }
}

/// `123 msg/s`, `45.6 k msg/s`, `7.89 M msg/s`.
pub fn rate(n: u64, elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        return "- msg/s".into();
    }
    let r = n as f64 / s;
    if r >= 1e6 {
        format!("{:.2} M msg/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k msg/s", r / 1e3)
    } else {
        format!("{r:.0} msg/s")
    }
}

/// `12.3 MB/s`.
fn byte_rate(bytes: u64, elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        return "- MB/s".into();
    }
    format!("{:.1} MB/s", bytes as f64 / s / 1e6)
}

/// What `send` is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct SendOptions {
    /// The queue.
    pub name: String,
    /// Elements to send (sequence numbers `0..count`).
    pub count: u64,
    /// Bytes per element.
    pub elem_size: usize,
    /// Capacity of the queue if this creates it; when given, an existing queue must
    /// have it.
    pub capacity: Option<usize>,
    /// Elements per reservation.
    pub batch: usize,
    /// Target elements per second (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// Create the queue lossless (and, with a capacity, require an existing one to be).
    pub lossless: bool,
}

/// What `send` did.
#[derive(Clone, Debug, PartialEq)]
pub struct SendSummary {
    /// The queue.
    pub name: String,
    /// Whether this run created the queue.
    pub created: bool,
    /// Its capacity.
    pub capacity: usize,
    /// Elements sent.
    pub sent: u64,
    /// Bytes per element.
    pub elem_size: usize,
    /// Reservations made.
    pub reservations: u64,
    /// Elements dropped instead of published because producers of other processes lapped
    /// their reservation first (readers see them as a lag).
    pub lapped: u64,
    /// Time from the first reservation to the last publish.
    pub elapsed: Duration,
}

impl fmt::Display for SendSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} elements of {} B in {} reservations to queue {:?} ({}, capacity {}) in {}: {}, {}",
            self.sent,
            self.elem_size,
            self.reservations,
            self.name,
            if self.created { "created" } else { "attached" },
            self.capacity,
            secs(self.elapsed),
            rate(self.sent, self.elapsed),
            byte_rate(self.sent * self.elem_size as u64, self.elapsed),
        )?;
        if self.lapped > 0 {
            write!(
                f,
                "; {} of them lapped by other producers before publishing (dropped)",
                self.lapped
            )?;
        }
        Ok(())
    }
}

/// Checks the options that need no queue.
fn check_send(opts: &SendOptions) -> Result<(), CliError> {
    check_element_size(opts.elem_size)?;
    if opts.batch == 0 {
        return Err(CliError::InvalidOption {
            option: "--batch",
            reason: "must be at least 1".into(),
        });
    }
    if let Some(c) = opts.capacity {
        RingSpec::new(c, opts.elem_size).geometry()?;
    }
    if let Some(c) = opts.capacity
        && opts.batch > c
    {
        return Err(CliError::InvalidOption {
            option: "--batch",
            reason: format!("{} is larger than the capacity {c}", opts.batch),
        });
    }
    if let Some(r) = opts.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(CliError::InvalidOption {
                option: "--rate",
                reason: format!(
                    "{} is not a positive number of elements per second",
                    number(r)
                ),
            });
        }
        // The last element is due (count - 1) / rate seconds after the start: `pace`
        // needs that as a `Duration` and an `Instant`.
        let last = opts.count.saturating_sub(1) as f64 / r;
        if due_after(Instant::now(), last).is_none() {
            return Err(CliError::InvalidOption {
                option: "--rate",
                reason: format!(
                    "{} elements per second is too low for --count {}: the last one would \
                     be due after {last:.3e} s, beyond what the clock can represent",
                    number(r),
                    opts.count
                ),
            });
        }
    }
    Ok(())
}

/// Opens the queue for `send`, creating it when it does not exist.
fn open_for_send(opts: &SendOptions) -> Result<Ring, CliError> {
    let mode = if opts.lossless {
        QueueMode::Lossless
    } else {
        QueueMode::Lossy
    };
    let spec = |capacity| RingSpec::new(capacity, opts.elem_size).with_mode(mode);
    let ring = match opts.capacity {
        Some(c) => Ring::open_or_create(&opts.name, &spec(c))?,
        None => match Ring::open(&opts.name, Some(opts.elem_size)) {
            Err(OpenError::Shm(ShmError::NotFound { .. })) => {
                Ring::open_or_create(&opts.name, &spec(DEFAULT_CAPACITY))?
            }
            other => other?,
        },
    };
    if opts.batch > ring.capacity() {
        return Err(CliError::InvalidOption {
            option: "--batch",
            reason: format!(
                "{} is larger than the capacity {} of queue {:?}",
                opts.batch,
                ring.capacity(),
                opts.name
            ),
        });
    }
    Ok(ring)
}

/// Sends `count` pattern elements, `batch` per reservation, paced to `rate`.
pub fn send(opts: &SendOptions, progress: &Progress) -> Result<SendSummary, CliError> {
    check_send(opts)?;
    let ring = open_for_send(opts)?;
    // Registered for the run: consumers see a producer, then a disconnect when it ends.
    let _producer = ring.register(Role::Producer, 0)?;
    let es = opts.elem_size;
    let mut scratch = vec![0u8; opts.batch * es];
    let start = Instant::now();
    let (mut seq, mut reservations, mut shown, mut lapped) = (0u64, 0u64, 0u64, 0u64);
    while seq < opts.count {
        let k = (opts.count - seq).min(opts.batch as u64) as usize;
        if let Some(r) = opts.rate {
            pace(start, seq as f64 / r);
        }
        for (i, elem) in scratch[..k * es].chunks_exact_mut(es).enumerate() {
            fill(seq + i as u64, elem);
        }
        let mut reservation = ring.reserve(k)?;
        reservation.write(0, &scratch[..k * es])?;
        if let Err(dropped) = reservation.publish() {
            lapped += dropped.len as u64;
        }
        seq += k as u64;
        reservations += 1;
        if seq - shown >= UPDATE_EVERY {
            progress.set(seq);
            shown = seq;
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    Ok(SendSummary {
        name: opts.name.clone(),
        created: ring.created(),
        capacity: ring.capacity(),
        sent: seq,
        elem_size: es,
        reservations,
        lapped,
        elapsed,
    })
}

/// `due_secs` after `start`, if the clock can represent it.
fn due_after(start: Instant, due_secs: f64) -> Option<Instant> {
    start.checked_add(Duration::try_from_secs_f64(due_secs).ok()?)
}

/// Sleeps until `due_secs` after `start` when that is at least 200 µs away (shorter
/// sleeps cost more than they wait; the average rate stays right). `check_send` refuses
/// the rates whose due times the clock cannot represent; should one get here anyway,
/// it is not waited for.
fn pace(start: Instant, due_secs: f64) {
    let Some(due) = due_after(start, due_secs) else {
        return;
    };
    let now = Instant::now();
    if due > now + Duration::from_micros(200) {
        std::thread::sleep(due - now);
    }
}

/// What `recv` is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct RecvOptions {
    /// The queue.
    pub name: String,
    /// Elements to receive.
    pub count: u64,
    /// Bytes per element (the queue's must match).
    pub elem_size: usize,
    /// How long to wait for the queue to appear, and for each next element.
    pub timeout: Duration,
    /// The segment of a shared cursor (created if missing) for work stealing.
    pub shared_cursor: Option<String>,
    /// Start at the next element published rather than the oldest still in the ring.
    pub from_now: bool,
    /// Receive at most this many elements per second (`None`: as fast as they come).
    pub rate: Option<f64>,
}

/// What `recv` saw.
#[derive(Clone, Debug, PartialEq)]
pub struct RecvSummary {
    /// The queue.
    pub name: String,
    /// Elements asked for.
    pub count: u64,
    /// Bytes per element.
    pub elem_size: usize,
    /// The counts.
    pub tally: Tally,
    /// Time from the first element to the last.
    pub elapsed: Duration,
    /// Whether the run ended because nothing arrived within the timeout.
    pub timed_out: Option<Duration>,
}

impl fmt::Display for RecvSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "received {} of {}, lost {}, corrupt {}, out of order {}",
            t.received, self.count, t.lost, t.corrupt, t.out_of_order,
        )?;
        if t.beyond > 0 {
            write!(f, ", beyond --count {}", t.beyond)?;
        }
        write!(
            f,
            " in {}: {}, {}",
            secs(self.elapsed),
            rate(t.received, self.elapsed),
            byte_rate(t.received * self.elem_size as u64, self.elapsed),
        )
    }
}

impl RecvSummary {
    /// `Ok` when every element arrived intact and none was claimed beyond the count;
    /// otherwise the error to report.
    pub fn verdict(&self) -> Result<(), CliError> {
        let t = &self.tally;
        if let Some(waited) = self.timed_out {
            let more = if t.position() > 0 { " more" } else { "" };
            return Err(CliError::Timeout {
                name: self.name.clone(),
                what: format!(
                    "nothing{more} arrived ({} of {} received)",
                    t.received, self.count
                ),
                waited,
            });
        }
        if t.is_perfect() {
            if t.beyond == 0 {
                return Ok(());
            }
            let seqs = match t.beyond_seqs {
                Some((lo, hi)) if lo == hi => format!(" (sequence number {lo})"),
                Some((lo, hi)) => format!(" (sequence numbers {lo}..={hi})"),
                None => String::new(),
            };
            return Err(CliError::ClaimedBeyondCount {
                name: self.name.clone(),
                count: self.count,
                beyond: t.beyond,
                seqs,
            });
        }
        Err(CliError::Incomplete {
            name: self.name.clone(),
            detail: format!(
                "{} of {} elements arrived intact ({} lost, {} corrupt, {} out of order{}); first: {}",
                t.received,
                self.count,
                t.lost,
                t.corrupt,
                t.out_of_order,
                if t.beyond > 0 {
                    format!(", {} claimed beyond --count", t.beyond)
                } else {
                    String::new()
                },
                t.first_problem.as_deref().unwrap_or("none")
            ),
        })
    }
}

/// Waits up to `timeout` for queue `name` to exist and be ready, then attaches to it.
/// Other errors (wrong element size, not a queue, permission) are returned at once.
pub fn wait_for_queue(name: &str, elem_size: usize, timeout: Duration) -> Result<Ring, CliError> {
    let start = Instant::now();
    loop {
        let err = match Ring::open(name, Some(elem_size)) {
            Ok(ring) => return Ok(ring),
            Err(
                e @ (OpenError::Shm(ShmError::NotFound { .. })
                | OpenError::NotReady { .. }
                | OpenError::Truncated { .. }),
            ) => e,
            Err(e) => return Err(e.into()),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(match err {
                OpenError::Shm(ShmError::NotFound { .. }) => CliError::Timeout {
                    name: name.to_owned(),
                    what: "it did not appear".into(),
                    waited: timeout,
                },
                e => e.into(),
            });
        }
        std::thread::sleep((timeout - waited).min(Duration::from_millis(10)));
    }
}

/// Receives and verifies `count` elements.
pub fn recv(opts: &RecvOptions, progress: &Progress) -> Result<RecvSummary, CliError> {
    check_element_size(opts.elem_size)?;
    let ring = wait_for_queue(&opts.name, opts.elem_size, opts.timeout)?;
    let start_at = if opts.from_now {
        ring.next_index()
    } else if ring.mode() == QueueMode::Lossless {
        ring.start_index()
    } else {
        ring.oldest_index()
    };
    let shared = match &opts.shared_cursor {
        Some(c) => Some(SharedCursor::open_or_create(c, start_at)?),
        None => None,
    };
    let mode = if shared.is_some() {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let mut tally = Tally::new(opts.count, mode);
    let role = if shared.is_some() {
        Role::SharedConsumer
    } else {
        Role::Consumer
    };
    let mut registration = ring.register(role, start_at)?;
    let mut cursor = registration
        .as_ref()
        .map_or(start_at, |r| r.position().max(start_at));
    let mut out = Vec::new();
    let paced = Instant::now();
    let strategy = WaitStrategy::default();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    let mut shown = 0;
    let mut timed_out = None;
    while !tally.is_done() {
        if let Some(r) = opts.rate {
            pace(paced, tally.position() as f64 / r);
        }
        if let Some(reg) = registration.as_mut() {
            // Every element before the cursor was read: a lossless queue may reuse it.
            let at = shared.as_ref().map_or(cursor, SharedCursor::load);
            reg.publish(at, tally.received);
        }
        let deadline = Deadline::after(opts.timeout);
        let got = match &shared {
            Some(c) => ring.read_shared_deadline(c, &mut out, &strategy, deadline),
            None => ring.read_deadline(&mut cursor, &mut out, &strategy, deadline),
        };
        match got {
            Ok(_) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                for elem in out.chunks_exact(opts.elem_size) {
                    match (tally.is_done(), mode) {
                        (false, _) => tally.element(elem),
                        // This reader's own cursor: the rest stays for its next run.
                        (true, Mode::Exclusive) => break,
                        // Claimed from the shared cursor: nobody else will get them.
                        (true, Mode::Shared) => tally.element_beyond_count(elem),
                    }
                }
            }
            Err(RecvTimeoutError::Lagged(n) | RecvTimeoutError::Abandoned(n)) => tally.lagged(n),
            Err(RecvTimeoutError::Corrupt { index, size }) => tally.corrupt_slot(index, size),
            Err(RecvTimeoutError::Timeout) => {
                timed_out = Some(opts.timeout);
                break;
            }
            Err(_) => {}
        }
        if tally.position() - shown >= UPDATE_EVERY {
            shown = tally.position();
            progress.set(shown);
        }
    }
    progress.finish();
    let elapsed = match (first, last) {
        (Some(a), Some(b)) => b - a,
        _ => Duration::ZERO,
    };
    Ok(RecvSummary {
        name: opts.name.clone(),
        count: opts.count,
        elem_size: opts.elem_size,
        tally,
        elapsed,
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(seq: u64, len: usize) -> Vec<u8> {
        let mut e = vec![0; len];
        fill(seq, &mut e);
        e
    }

    #[test]
    fn the_pattern_matches_its_definition() {
        for seq in [0u64, 1, 36, 255, 256, 1 << 40, u64::MAX] {
            let e = elem(seq, 300);
            assert_eq!(e[..8], seq.to_le_bytes());
            for (j, &b) in e.iter().enumerate().skip(8) {
                let expected = ((u128::from(seq) * 7 + j as u128) % 256) as u8;
                assert_eq!(b, expected, "seq {seq} byte {j}");
            }
            assert_eq!(verify(&e), Ok(seq));
        }
        assert_eq!(verify(&elem(9, 8)), Ok(9), "8 bytes: the number alone");
        assert_eq!(verify(&[1, 2, 3]), Err(Corruption::TooShort { len: 3 }));
        let mut bad = elem(5, 16);
        bad[11] ^= 1;
        assert_eq!(
            verify(&bad),
            Err(Corruption::Byte {
                seq: 5,
                offset: 11,
                found: bad[11],
                expected: bad[11] ^ 1
            })
        );
    }

    #[test]
    fn element_sizes_below_eight_are_refused() {
        assert!(matches!(
            check_element_size(7),
            Err(CliError::ElementTooSmall(7))
        ));
        assert!(check_element_size(8).is_ok());
    }

    #[test]
    fn an_exclusive_tally_counts_gaps_as_lost_and_stops_at_the_end() {
        let mut t = Tally::new(10, Mode::Exclusive);
        for seq in [0, 1, 2, 5, 6] {
            t.element(&elem(seq, 16));
        }
        assert_eq!((t.received, t.lost), (5, 2));
        t.lagged(2); // the gap already counted it
        assert_eq!(t.lost, 2);
        t.element(&elem(3, 16)); // goes back
        t.element(&elem(99, 16)); // out of range
        assert_eq!(t.out_of_order, 2);
        assert!(!t.is_done());
        let mut bad = elem(7, 16);
        bad[15] = bad[15].wrapping_add(1);
        t.element(&bad);
        assert_eq!(
            (t.corrupt, t.position()),
            (1, 8),
            "a damaged 7 still advances"
        );
        t.element(&elem(8, 16));
        t.element(&elem(9, 16));
        assert!(t.is_done() && !t.is_perfect());
        assert_eq!(
            t.first_problem.as_deref(),
            Some("2 elements lost from 3 on")
        );

        let mut ok = Tally::new(3, Mode::Exclusive);
        for seq in 0..3 {
            ok.element(&elem(seq, 8));
        }
        assert!(ok.is_done() && ok.is_perfect());
    }

    #[test]
    fn a_shared_tally_accepts_gaps_but_not_going_back() {
        let mut t = Tally::new(4, Mode::Shared);
        for seq in [3, 8, 20] {
            t.element(&elem(seq, 8));
        }
        assert_eq!((t.received, t.lost, t.out_of_order), (3, 0, 0));
        t.element(&elem(4, 8));
        assert_eq!(t.out_of_order, 1);
        assert!(t.is_done() && !t.is_perfect());
        let mut lag = Tally::new(5, Mode::Shared);
        lag.lagged(3);
        lag.element(&elem(0, 8));
        assert_eq!(lag.lost, 3);
        assert!(!lag.is_done());
        lag.element(&elem(1, 8));
        assert!(lag.is_done() && !lag.is_perfect());
    }

    #[test]
    fn summaries_are_one_line_and_verdicts_match() {
        let mut t = Tally::new(2, Mode::Exclusive);
        t.element(&elem(0, 8));
        t.element(&elem(1, 8));
        let s = RecvSummary {
            name: "q".into(),
            count: 2,
            elem_size: 8,
            tally: t,
            elapsed: Duration::from_millis(500),
            timed_out: None,
        };
        assert_eq!(
            s.to_string(),
            "received 2 of 2, lost 0, corrupt 0, out of order 0 in 500.0 ms: 4 msg/s, 0.0 MB/s"
        );
        assert!(s.verdict().is_ok());
        let late = RecvSummary {
            timed_out: Some(Duration::from_secs(1)),
            ..s.clone()
        };
        let err = late.verdict().unwrap_err().to_string();
        assert!(
            err.contains("nothing more arrived (2 of 2 received)"),
            "{err}"
        );
        let silent = RecvSummary {
            tally: Tally::new(2, Mode::Exclusive),
            ..late.clone()
        };
        let err = silent.verdict().unwrap_err().to_string();
        assert!(err.contains("nothing arrived (0 of 2 received)"), "{err}");
        assert_eq!(rate(3_000_000, Duration::from_secs(2)), "1.50 M msg/s");
        assert_eq!(rate(1, Duration::ZERO), "- msg/s");
    }

    #[test]
    fn elements_claimed_beyond_the_count_are_counted_and_fail_the_run() {
        let mut t = Tally::new(1, Mode::Shared);
        t.element(&elem(0, 8));
        assert!(t.is_done() && t.is_perfect());
        for seq in [1, 2, 3] {
            t.element_beyond_count(&elem(seq, 8));
        }
        assert_eq!((t.received, t.beyond, t.beyond_seqs), (1, 3, Some((1, 3))));
        let s = RecvSummary {
            name: "q".into(),
            count: 1,
            elem_size: 8,
            tally: t,
            elapsed: Duration::from_millis(1),
            timed_out: None,
        };
        assert!(s.to_string().starts_with(
            "received 1 of 1, lost 0, corrupt 0, out of order 0, beyond --count 3 in "
        ));
        let err = s.verdict().unwrap_err();
        assert!(
            matches!(
                err,
                CliError::ClaimedBeyondCount {
                    beyond: 3,
                    count: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("(sequence numbers 1..=3)"),
            "{err}"
        );
    }

    #[test]
    fn local_round_trip_through_a_ring() {
        // The send loop's reservation filling, checked against the tally, in memory.
        let ring = Ring::local(&RingSpec::new(64, 24)).unwrap();
        let mut scratch = vec![0u8; 3 * 24];
        for (i, e) in scratch.chunks_exact_mut(24).enumerate() {
            fill(i as u64, e);
        }
        ring.send_bytes(&scratch).unwrap();
        let (mut cursor, mut out) = (0, Vec::new());
        ring.read(&mut cursor, &mut out).unwrap();
        let mut t = Tally::new(3, Mode::Exclusive);
        out.chunks_exact(24).for_each(|e| t.element(e));
        assert!(t.is_perfect());
    }

    #[test]
    fn bad_send_options_are_refused_before_touching_a_queue() {
        let base = SendOptions {
            name: "never-created-by-this-test".into(),
            count: 1,
            elem_size: 8,
            capacity: Some(16),
            batch: 1,
            rate: None,
            lossless: false,
        };
        let cases = [
            SendOptions {
                elem_size: 4,
                ..base.clone()
            },
            SendOptions {
                batch: 0,
                ..base.clone()
            },
            SendOptions {
                batch: 17,
                ..base.clone()
            },
            SendOptions {
                rate: Some(-1.0),
                ..base.clone()
            },
            SendOptions {
                rate: Some(f64::NAN),
                ..base.clone()
            },
            SendOptions {
                capacity: Some(12),
                ..base.clone()
            },
            // The last element would be due after ~1e30 s: no clock says that.
            SendOptions {
                count: 2,
                rate: Some(1e-30),
                ..base.clone()
            },
        ];
        for opts in cases {
            assert!(check_send(&opts).is_err(), "{opts:?}");
        }
        assert!(check_send(&base).is_ok());
        // Slow, but representable.
        let slow = SendOptions {
            count: 3,
            rate: Some(1e-6),
            ..base
        };
        assert!(check_send(&slow).is_ok());
        // One element is due at once, whatever the rate.
        assert!(
            check_send(&SendOptions {
                count: 1,
                rate: Some(1e-300),
                ..slow
            })
            .is_ok()
        );
    }
}
