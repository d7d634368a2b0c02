// The 64-byte message of the bridge's process tests, shared by the test peer and the
// tests (`#[path]`-included by both). Every field is derived from `seq`, so a receiver
// checks each byte.

use fastipc::IpcMessage;

/// A 64-byte test message.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Probe {
    /// Sequence number from 0.
    pub seq: u64,
    /// `seq * 3 + 1`.
    pub triple: u64,
    /// `!seq`.
    pub inverse: u64,
    /// `seq as f64 / 2`.
    pub half: f64,
    /// `(seq + i) as u8` at index `i`.
    pub bytes: [u8; 32],
}

impl Probe {
    /// The message number `seq`.
    pub fn new(seq: u64) -> Probe {
        Probe {
            seq,
            triple: seq.wrapping_mul(3).wrapping_add(1),
            inverse: !seq,
            half: seq as f64 / 2.0,
            bytes: core::array::from_fn(|i| (seq as usize + i) as u8),
        }
    }

    /// Whether every field is what `Probe::new(self.seq)` makes.
    pub fn is_intact(&self) -> bool {
        *self == Probe::new(self.seq)
    }
}
