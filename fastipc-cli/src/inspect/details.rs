//! Each kind's decoded state (from [`fastipc::inspect`]) turned into the report's
//! details, with what is wrong with it listed as problems.

use super::*;

pub(super) fn hex32(v: u32) -> String {
    format!("{v:#010x}")
}

pub(super) fn hex64(v: u64) -> String {
    format!("{v:#018x}")
}

/// A u32 marker as the four characters it spells in memory order read backwards
/// (`0x534C5131` is `"SLQ1"`), non-printable bytes as `.`.
pub fn marker_text(v: u32) -> String {
    v.to_be_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

pub(super) fn init_state_name(s: u32) -> &'static str {
    match s {
        init_state::FRESH => "fresh (nobody initialised it)",
        init_state::LEGACY => "legacy (made before the handshake existed)",
        init_state::INITIALISING => "initialising",
        init_state::READY => "ready",
        _ => "invalid",
    }
}

pub(super) fn queue(q: &QueueState, problems: &mut Vec<String>) -> QueueDetails {
    let inspection = &q.inspection;
    let snap = &inspection.header;
    if let Err(e) = &inspection.validation {
        problems.push(e.to_string());
    }
    let has_endpoints = q.endpoints.is_some();
    let endpoints = match &q.endpoints {
        Some(Ok(list)) => list.clone(),
        Some(Err(_)) => {
            problems.push("the header announces an endpoint table, but none is there".into());
            Vec::new()
        }
        None => Vec::new(),
    };
    let endpoints = endpoints
        .into_iter()
        .map(|e| {
            let consumer = e.role.is_consumer();
            Endpoint {
                slot: e.slot,
                role: e.role.as_str(),
                pid: e.pid,
                alive: e.alive,
                position: consumer.then_some(e.position),
                lag: consumer.then(|| snap.next_index().saturating_sub(e.position)),
                intent: e.intent,
            }
        })
        .collect();
    QueueDetails {
        capacity: snap.capacity,
        element_size: snap.element_size,
        items_per_slot: snap.effective_items_per_slot(),
        magic: hex32(snap.magic),
        magic_text: marker_text(snap.magic),
        features: snap.features(),
        init_state: snap.init_state,
        init_state_name: init_state_name(snap.init_state),
        reserved: snap.reserved,
        next_index: snap.next_index(),
        last_reserve_count: snap.last_reserve_count(),
        last_published: snap.last_published_index(),
        queue_mode: match q.mode {
            Mode::Lossless => "lossless",
            _ => "lossy",
        },
        single_producer: q.single_producer,
        has_endpoints,
        endpoints,
        fingerprint: hex64(snap.fingerprint),
        type_name: q.type_name.clone(),
        wake_seq: snap.wake_seq,
        sleepers: snap.sleepers,
        valid: inspection.validation.is_ok(),
    }
}

pub(super) fn mutex_state_name(state: u32) -> &'static str {
    match state {
        MUTEX_UNLOCKED => "unlocked",
        MUTEX_LOCKED => "locked",
        MUTEX_CONTENDED => "locked, waiters may sleep",
        _ => "invalid",
    }
}

pub(super) fn mutex(state: &MutexState, problems: &mut Vec<String>) -> MutexDetails {
    let info = &state.info;
    if !info.has_valid_magic() {
        problems.push(format!(
            "magic {:#010x} is neither {MUTEX_MAGIC:#010x} (\"MUTX\") nor 0: the segment holds something else",
            info.magic
        ));
    }
    if info.state > MUTEX_CONTENDED {
        problems.push(format!(
            "state {} is not a mutex state (0 unlocked, 1 locked, 2 locked with waiters)",
            info.state
        ));
    }
    let (alive, owner_pid) = (state.owner_alive, state.owner_pid);
    if alive == Some(false) {
        let what_next = if state.fastipc_holder {
            "the next fastipc locker takes the lock over (OwnerDied)"
        } else {
            "only its process id is recorded (a Python holder), so no locker takes the lock \
             over: it stays held until released by hand"
        };
        problems.push(format!(
            "held by process {}, which is dead: {what_next}",
            owner_pid.unwrap_or(0)
        ));
    }
    MutexDetails {
        magic: hex32(info.magic),
        state: info.state,
        state_name: mutex_state_name(info.state),
        locked: info.is_locked(),
        owner_pid,
        owner_alive: alive,
        owner_identity: info.owner_identity.map(|id| Identity {
            pid: id.pid,
            start_time_low: id.start_time_low,
        }),
        last_acquired_ns: info.last_acquired_ns,
    }
}

pub(super) fn shared_cell(size: u64, cell: &CellState, problems: &mut Vec<String>) -> CellDetails {
    let mutex = mutex(&cell.mutex, problems);
    let info = &cell.info;
    if info.magic != CELL_MAGIC {
        problems.push(format!(
            "cell magic {:#010x} at offset 64 is not {CELL_MAGIC:#010x} (\"CELL\"): not a shared cell",
            info.magic
        ));
    } else if info.version != CELL_VERSION {
        problems.push(format!(
            "layout version {} (this build reads {CELL_VERSION})",
            info.version
        ));
    }
    let (end, holds_value) = (cell.value_end, cell.holds_value);
    if info.magic == CELL_MAGIC && !holds_value {
        problems.push(format!(
            "the segment is {size} bytes but its value ends at byte {end}"
        ));
    }
    if info.magic == CELL_MAGIC && info.version == CELL_VERSION && !info.is_valid() {
        problems.push(format!(
            "inconsistent header: value offset {}, alignment {}, fingerprint {:#018x}",
            info.value_offset, info.value_type.align, info.value_type.fingerprint
        ));
    }
    CellDetails {
        mutex,
        magic: hex32(info.magic),
        version: info.version,
        value_offset: info.value_offset,
        type_name: info.value_type.name.clone(),
        fingerprint: hex64(info.value_type.fingerprint),
        value_size: info.value_type.size,
        value_align: info.value_type.align,
        valid: info.is_valid() && holds_value,
    }
}

pub(super) fn semaphore(info: &SemaphoreInfo, problems: &mut Vec<String>) -> SemaphoreDetails {
    if !info.has_valid_magic() {
        problems.push(format!(
            "magic {:#010x} is not {SEMAPHORE_MAGIC:#010x} (\"SEMA\"): not initialised, or something else",
            info.magic
        ));
    }
    SemaphoreDetails {
        magic: hex32(info.magic),
        count: info.count,
        last_pid: (info.last_pid != 0).then_some(info.last_pid),
        sleepers: info.sleepers,
        last_acquired_ns: info.last_acquired_ns,
    }
}

pub(super) fn event(info: &EventInfo, problems: &mut Vec<String>) -> EventDetails {
    if info.value > 1 {
        problems.push(format!(
            "value {} (fastipc and Python store 0 or 1; any non-zero value reads as set)",
            info.value
        ));
    }
    EventDetails {
        value: info.value,
        set: info.is_set(),
    }
}

pub(super) fn py_data(
    p: &PyDataState,
    is_queue: bool,
    problems: &mut Vec<String>,
) -> PyDataDetails {
    let magic = p.magic;
    let expected = if is_queue {
        PY_QUEUE_MAGIC
    } else {
        PY_HISTORY_MAGIC
    };
    if magic != expected {
        problems.push(format!(
            "magic {magic:#x} is not {expected:#x} (\"{}\"): not initialised, or something else",
            if is_queue { "PFNQ" } else { "PFHB" }
        ));
    }
    let writer = &p.writer;
    PyDataDetails {
        magic: format!("{magic:#x}"),
        meta_size: p.meta_size,
        num_slots: p.num_slots,
        slot_size: p.slot_size,
        head: p.head,
        tail: p.tail,
        mode: p.mode,
        writer_locked: writer.is_locked(),
        writer_owner_pid: (writer.owner_pid != 0).then_some(writer.owner_pid),
    }
}
