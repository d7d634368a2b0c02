//! Counters an export or an import keeps, readable while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of an export (a snapshot: [`crate::ExportHandle::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Zenoh messages (batches) published.
    pub batches: u64,
    /// Queue messages published.
    pub messages: u64,
    /// Message bytes published (headers not counted).
    pub bytes: u64,
    /// Messages the exporter missed because producers overwrote them (`Lagged`).
    pub lagged: u64,
    /// Messages abandoned by dead producers, skipped.
    pub abandoned: u64,
    /// Corrupt slots skipped.
    pub corrupt: u64,
    /// Messages read but not published because no subscriber matched the key (lossy
    /// mode; a lossless exporter does not read meanwhile).
    pub unmatched: u64,
}

/// Counters of an import (a snapshot: [`crate::ImportHandle::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportStats {
    /// Batches received and written.
    pub batches: u64,
    /// Messages written into the local queue.
    pub messages: u64,
    /// Message bytes written.
    pub bytes: u64,
    /// Upstream `Lagged` counts the exporters forwarded.
    pub upstream_lagged: u64,
    /// Upstream abandoned-message counts the exporters forwarded.
    pub upstream_abandoned: u64,
    /// Upstream corrupt slots the exporters forwarded.
    pub upstream_corrupt: u64,
    /// Messages of batches that never arrived (Zenoh dropped them under congestion, or
    /// the importer's link was down): gaps in a stream's message sequence.
    pub dropped: u64,
    /// Messages of the source queue that no exporter published: the gap in source
    /// indices between an exporter run and the next one on the same queue (what a
    /// crashed exporter had read but not sent, and what was published while none ran).
    pub restart_gap: u64,
    /// Payloads on the key that are not batches of this format, ignored.
    pub malformed: u64,
    /// Messages exporters read while no subscriber matched, not published (forwarded
    /// counts): what was lost while no importer ran.
    pub unmatched: u64,
    /// Messages received again after an exporter restarted from its kept position
    /// (`resume`), recognised by their source index and not written twice.
    pub duplicates: u64,
}

impl ImportStats {
    /// Every message known lost before reaching the local queue.
    pub fn lost(&self) -> u64 {
        self.upstream_lagged
            + self.upstream_abandoned
            + self.dropped
            + self.restart_gap
            + self.unmatched
    }
}

macro_rules! atomic_stats {
    ($atomic:ident, $plain:ident { $($f:ident),* }) => {
        /// The live counters (relaxed: each is an independent statistic, read for display).
        #[derive(Debug, Default)]
        pub(crate) struct $atomic { $(pub(crate) $f: AtomicU64,)* }

        impl $atomic {
            pub(crate) fn snapshot(&self) -> $plain {
                $plain { $($f: self.$f.load(Ordering::Relaxed),)* }
            }
        }
    };
}

atomic_stats!(
    LiveExport,
    ExportStats {
        batches,
        messages,
        bytes,
        lagged,
        abandoned,
        corrupt,
        unmatched
    }
);
atomic_stats!(
    LiveImport,
    ImportStats {
        batches,
        messages,
        bytes,
        upstream_lagged,
        upstream_abandoned,
        upstream_corrupt,
        dropped,
        restart_gap,
        malformed,
        unmatched,
        duplicates
    }
);

/// Adds `v` to a counter (relaxed: see the struct).
pub(crate) fn add(counter: &AtomicU64, v: u64) {
    if v != 0 {
        counter.fetch_add(v, Ordering::Relaxed);
    }
}
