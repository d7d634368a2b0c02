//! `fastipc send`: paced pattern traffic, one reservation per batch.

use super::*;

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
pub(super) fn check_send(opts: &SendOptions) -> Result<(), CliError> {
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
pub(super) fn open_for_send(opts: &SendOptions) -> Result<Ring, CliError> {
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
