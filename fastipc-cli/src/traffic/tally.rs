//! What a receiver counts ([`Tally`]), the rates printed in summaries, and pacing.

use super::*;

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
pub(super) fn byte_rate(bytes: u64, elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        return "- MB/s".into();
    }
    format!("{:.1} MB/s", bytes as f64 / s / 1e6)
}

/// `due_secs` after `start`, if the clock can represent it.
pub(super) fn due_after(start: Instant, due_secs: f64) -> Option<Instant> {
    start.checked_add(Duration::try_from_secs_f64(due_secs).ok()?)
}

/// Sleeps until `due_secs` after `start` when that is at least 200 µs away (shorter
/// sleeps cost more than they wait; the average rate stays right). `check_send` refuses
/// the rates whose due times the clock cannot represent; should one get here anyway,
/// it is not waited for.
pub(super) fn pace(start: Instant, due_secs: f64) {
    let Some(due) = due_after(start, due_secs) else {
        return;
    };
    let now = Instant::now();
    if due > now + Duration::from_micros(200) {
        std::thread::sleep(due - now);
    }
}
