//! What a tool sees of a table: its active entries with a liveness check each, from the
//! live table ([`Table::list`]) or from a copy of its bytes ([`decode_table`]).

use core::sync::atomic::Ordering::{Acquire, Relaxed};

use super::{
    ENTRY_SIZE, MAX_ENDPOINTS, NO_INTENT, Role, TABLE_LEN, TABLE_MAGIC, Table, is_held, state,
};
use crate::sys::process::ProcessId;

/// One endpoint as [`Ring::endpoints`](crate::queue::Ring::endpoints) (and `fastipc inspect`) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// Entry number.
    pub slot: usize,
    /// What it is.
    pub role: Role,
    /// Its process id.
    pub pid: u32,
    /// Whether its process may still run (`false` only when certainly dead).
    pub alive: bool,
    /// Consumers: the published position (every message before it was read).
    pub position: u64,
    /// Consumers: messages received as of the last publish.
    pub count: u64,
    /// Producers: the claim in flight, `(start, n)`.
    pub intent: Option<(u64, u64)>,
    /// Durable consumers: their key.
    pub durable_key: Option<u64>,
}

impl Table {
    /// Every active entry, with a liveness check of each.
    pub(crate) fn list(&self) -> Vec<EndpointInfo> {
        (0..MAX_ENDPOINTS)
            .filter_map(|i| {
                let e = self.entry(i);
                if e.state.load(Acquire) != state::ACTIVE {
                    return None;
                }
                let role = Role::from_code(e.role.load(Relaxed))?;
                let intent = e.intent.load(Acquire);
                // A durable consumer is alive while held by a live registrant.
                let held = role != Role::DurableConsumer || is_held(intent);
                Some(EndpointInfo {
                    slot: i,
                    role,
                    pid: e.pid.load(Relaxed),
                    alive: held && !self.identity(e).is_dead(),
                    position: e.position.load(Acquire),
                    count: e.count.load(Relaxed),
                    intent: (role == Role::Producer && intent != NO_INTENT)
                        .then(|| (intent, e.intent_n.load(Relaxed))),
                    durable_key: (role == Role::DurableConsumer).then(|| e.key.load(Relaxed)),
                })
            })
            .collect()
    }
}

/// Decodes a copy of a table's [`TABLE_LEN`] bytes (e.g. read with `read(2)` by a tool
/// that only has read access): the active entries, each with a liveness check of its
/// process. `None` when the bytes are too short or lack the table's marker.
///
/// ```
/// use fastipc::queue::endpoints::{decode_table, Role, TABLE_LEN};
/// use fastipc::queue::Mode;
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u64>::local_with(8, Mode::Lossless)?;
/// let _tx = q.producer()?;
/// let _rx = q.consumer()?;
/// let listed = q.ring().endpoints();
/// assert_eq!(listed.len(), 2);
/// assert!(listed.iter().any(|e| e.role == Role::Consumer && e.alive && e.position == 0));
/// assert_eq!(decode_table(&[0u8; TABLE_LEN]), None); // no marker
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_table(bytes: &[u8]) -> Option<Vec<EndpointInfo>> {
    let bytes = bytes.get(..TABLE_LEN)?;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    if u64_at(0) != TABLE_MAGIC {
        return None;
    }
    let list = (0..MAX_ENDPOINTS)
        .filter_map(|i| {
            let o = ENTRY_SIZE * (1 + i);
            if u32_at(o) != state::ACTIVE {
                return None;
            }
            let role = Role::from_code(u32_at(o + 4))?;
            let who = ProcessId {
                pid: u32_at(o + 8),
                pid_namespace: u32_at(o + 12),
                start_time: u64_at(o + 16),
            };
            let intent = u64_at(o + 32);
            let held = role != Role::DurableConsumer || is_held(intent);
            Some(EndpointInfo {
                slot: i,
                role,
                pid: who.pid,
                alive: held && !who.is_dead(),
                position: u64_at(o + 24),
                count: u64_at(o + 48),
                intent: (role == Role::Producer && intent != NO_INTENT)
                    .then(|| (intent, u64_at(o + 40))),
                durable_key: (role == Role::DurableConsumer).then(|| u64_at(o + 56)),
            })
        })
        .collect();
    Some(list)
}
