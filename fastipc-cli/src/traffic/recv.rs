//! `fastipc recv`: reads and verifies pattern traffic, on its own or a shared cursor.

use super::*;

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
