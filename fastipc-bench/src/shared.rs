//! A control block for the cross-process runs: a few words, each on its own cache line,
//! in a named shared segment (or on the heap when the same loop runs in threads).
//!
//! | line | word | use |
//! |---|---|---|
//! | 0 | [`Slot::Ready`] | the child has attached and is ready |
//! | 1 | [`Slot::Go`] | the parent starts the measured part |
//! | 2 | [`Slot::A`] | the ping-pong word (spin and futex floors) |
//! | 3 | [`Slot::B`] | a second word (the reply direction where one is needed) |
//! | 4 | [`Slot::Issued`] | credits taken by producers (see [`crate::queues::Credits`]) |
//! | 5 | [`Slot::Consumed`] | items the consumer has taken (see [`crate::queues::Credits`]) |
//! | 6 | [`Slot::Done`] | a child's result or "finished" flag |
//! | 7.. | [`Slot::Payload`] | free space: a lock or other object under test (`PAYLOAD_LEN` bytes) |

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastipc::{Region, Segment};

/// The cache line size assumed for the layout.
pub const LINE: usize = 64;
/// Bytes available at [`Slot::Payload`].
pub const PAYLOAD_LEN: usize = 8 * LINE;
/// The control block's total length.
pub const CTL_LEN: usize = 7 * LINE + PAYLOAD_LEN;

/// The words of a control block; each starts a cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Child ready.
    Ready = 0,
    /// Start of the measured part.
    Go = 1,
    /// First data word.
    A = 2,
    /// Second data word.
    B = 3,
    /// Producer credits issued.
    Issued = 4,
    /// Items consumed.
    Consumed = 5,
    /// A child's result.
    Done = 6,
    /// Start of the free payload area.
    Payload = 7,
}

/// A control block: heap memory for threads, or a named segment shared with children.
#[derive(Debug)]
pub struct Ctl {
    region: Region,
    name: Option<String>,
    owner: bool,
}

impl Ctl {
    /// A control block on the heap (threads of this process).
    pub fn local() -> Ctl {
        Ctl {
            region: Region::heap(CTL_LEN),
            name: None,
            owner: false,
        }
    }

    /// Creates a named control block, zeroed; it is unlinked when this value drops.
    pub fn create(tag: &str) -> std::io::Result<Ctl> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "xbench-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let seg = Segment::create(&name, CTL_LEN, |_| {}).map_err(std::io::Error::other)?;
        Ok(Ctl {
            region: Region::shared(seg),
            name: Some(name),
            owner: true,
        })
    }

    /// Opens the control block a parent created.
    pub fn open(name: &str) -> std::io::Result<Ctl> {
        let seg = Segment::open(name, CTL_LEN).map_err(std::io::Error::other)?;
        Ok(Ctl {
            region: Region::shared(seg),
            name: Some(name.to_owned()),
            owner: false,
        })
    }

    /// The segment's name (`None` for a heap block).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The 64-bit word at the start of `slot`'s line.
    pub fn u64(&self, slot: Slot) -> &AtomicU64 {
        self.region
            .mem()
            .atomic_u64(slot as usize * LINE)
            .expect("control words are in bounds and aligned")
    }

    /// The 32-bit word at the start of `slot`'s line (a futex word).
    pub fn u32(&self, slot: Slot) -> &AtomicU32 {
        self.region
            .mem()
            .atomic_u32(slot as usize * LINE)
            .expect("control words are in bounds and aligned")
    }

    /// The payload area, for an object under test (a mutex, a queue's cursor...).
    pub fn payload(&self) -> fastipc::MemRef<'_> {
        self.region
            .mem()
            .slice(Slot::Payload as usize * LINE, PAYLOAD_LEN)
            .expect("the payload area is in bounds")
    }

    /// Waits (sleeping 50 µs between looks; this is for hand-shakes, not measurements)
    /// until `slot` holds at least `value`, for at most `timeout`.
    pub fn wait_at_least(&self, slot: Slot, value: u64, timeout: Duration) -> std::io::Result<()> {
        let start = Instant::now();
        while self.u64(slot).load(Ordering::Acquire) < value {
            if start.elapsed() > timeout {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("control word {slot:?} did not reach {value} within {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(())
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let (true, Some(name)) = (self.owner, &self.name) {
            let _ = Segment::unlink(name);
        }
    }
}
