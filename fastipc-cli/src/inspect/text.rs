//! The text form of a [`Report`](super::Report): one `key  value` line per field.

use super::*;

pub(super) fn mutex_summary(m: &MutexDetails) -> String {
    match (m.locked, m.owner_pid, m.owner_alive) {
        (false, _, _) => "unlocked".into(),
        (true, Some(pid), Some(alive)) => {
            format!("locked by {pid} ({})", if alive { "alive" } else { "dead" })
        }
        (true, _, _) => "locked".into(),
    }
}

pub(super) fn mutex_lines(m: &MutexDetails, l: &mut Vec<(&'static str, String)>) {
    l.push(("magic", m.magic.clone()));
    l.push(("state", format!("{} ({})", m.state, m.state_name)));
    l.push((
        "owner",
        match (m.owner_pid, m.owner_alive) {
            (Some(pid), Some(alive)) => {
                format!("{pid} ({})", if alive { "alive" } else { "dead" })
            }
            (Some(pid), None) => pid.to_string(),
            (None, _) => "none".into(),
        },
    ));
    if let Some(id) = m.owner_identity {
        l.push((
            "owner identity",
            format!(
                "pid {}, start time (low bits) {}",
                id.pid, id.start_time_low
            ),
        ));
    }
    l.push(("last acquired", ago(m.last_acquired_ns)));
}

pub(super) fn pids(list: &[Attached]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|a| format!("{} ({})", a.pid, if a.alive { "alive" } else { "dead" }))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn opt<T: fmt::Display>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_owned(), |v| v.to_string())
}

/// "12.5 s ago" for a `CLOCK_REALTIME` timestamp in ns (0: "never").
pub(super) fn ago(ns: u64) -> String {
    if ns == 0 {
        return "never".into();
    }
    // `CLOCK_REALTIME`, the clock the primitives record.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    if ns > now {
        return format!("{ns} ns (in the future)");
    }
    format!("{:.3} s ago", (now - ns) as f64 / 1e9)
}

impl Report {
    /// The kind of object.
    pub fn kind(&self) -> Kind {
        match &self.details {
            Details::Queue(_) => Kind::Queue,
            Details::Mutex(_) => Kind::Mutex,
            Details::Semaphore(_) => Kind::Semaphore,
            Details::Event(_) => Kind::Event,
            Details::SharedCell(_) => Kind::SharedCell,
            Details::PyfastipcQueue(_) => Kind::PyfastipcQueue,
            Details::PyfastipcHistoryBuffer(_) => Kind::PyfastipcHistoryBuffer,
        }
    }

    /// A few words on the object's state, for `ls`.
    pub fn summary(&self) -> String {
        let mut s = match &self.details {
            Details::Queue(q) => {
                let mut s = format!(
                    "{} x {} B, {}, next index {}",
                    q.capacity,
                    q.element_size,
                    q.mode_words(),
                    q.next_index
                );
                if let Some(t) = &q.type_name {
                    let _ = write!(s, ", type {t}");
                }
                s
            }
            Details::Mutex(m) => mutex_summary(m),
            Details::SharedCell(c) => format!(
                "{} ({} B), {}",
                c.type_name,
                c.value_size,
                mutex_summary(&c.mutex)
            ),
            Details::Semaphore(s) => format!("count {}", s.count),
            Details::Event(e) => (if e.set { "set" } else { "clear" }).into(),
            Details::PyfastipcQueue(p) | Details::PyfastipcHistoryBuffer(p) => {
                format!("{} slots x {} B", p.num_slots, p.slot_size)
            }
        };
        if !self.problems.is_empty() {
            let _ = write!(s, " [{} problem(s)]", self.problems.len());
        }
        s
    }

    fn lines(&self) -> Vec<(&'static str, String)> {
        let mut l = vec![
            ("segment", self.name.clone()),
            (
                "file",
                format!(
                    "{} ({} bytes, mode {}, owner uid {})",
                    self.path, self.size, self.mode, self.uid
                ),
            ),
            ("kind", self.kind().as_str().to_owned()),
        ];
        match &self.details {
            Details::Queue(q) => {
                l.push((
                    "marker",
                    format!(
                        "{} \"{}\" (features {:#x})",
                        q.magic, q.magic_text, q.features
                    ),
                ));
                l.push((
                    "capacity",
                    format!(
                        "{} elements of {} bytes, {} per slot",
                        q.capacity, q.element_size, q.items_per_slot
                    ),
                ));
                l.push((
                    "init state",
                    format!("{} ({})", q.init_state, q.init_state_name),
                ));
                l.push((
                    "next index",
                    format!(
                        "{} (last reservation: {} elements; reserved word {:#x})",
                        q.next_index, q.last_reserve_count, q.reserved
                    ),
                ));
                l.push(("last published", opt(q.last_published, "none")));
                l.push((
                    "mode",
                    if q.has_endpoints {
                        q.mode_words()
                    } else {
                        "lossy (no endpoint table: made by a C++/Python peer)".into()
                    },
                ));
                if q.has_endpoints && q.endpoints.is_empty() {
                    l.push(("endpoints", "none registered".into()));
                }
                for e in &q.endpoints {
                    let alive = if e.alive { "alive" } else { "dead" };
                    let what = match (e.position, e.lag) {
                        (Some(p), Some(lag)) => format!("position {p}, lag {lag}"),
                        _ => match e.intent {
                            Some((start, n)) => format!("last claim {start} (+{n})"),
                            None => "no claim yet".into(),
                        },
                    };
                    l.push((
                        "endpoint",
                        format!("#{} {} pid {} ({alive}), {what}", e.slot, e.role, e.pid),
                    ));
                }
                l.push((
                    "message type",
                    match &q.type_name {
                        Some(t) => format!("{t} (fingerprint {})", q.fingerprint),
                        None if q.fingerprint != hex64(0) => {
                            format!("unnamed (fingerprint {})", q.fingerprint)
                        }
                        None => {
                            "not recorded (made by a C++/Python peer or an untyped ring)".into()
                        }
                    },
                ));
                l.push((
                    "wake word",
                    format!("seq {}, sleepers {}", q.wake_seq, q.sleepers),
                ));
                l.push(("valid", if q.valid { "yes" } else { "no" }.into()));
            }
            Details::Mutex(m) => mutex_lines(m, &mut l),
            Details::SharedCell(c) => {
                l.push((
                    "value type",
                    format!(
                        "{} ({} bytes, align {}, fingerprint {})",
                        c.type_name, c.value_size, c.value_align, c.fingerprint
                    ),
                ));
                l.push((
                    "cell header",
                    format!(
                        "magic {}, version {}, value at offset {}",
                        c.magic, c.version, c.value_offset
                    ),
                ));
                l.push(("valid", if c.valid { "yes" } else { "no" }.into()));
                mutex_lines(&c.mutex, &mut l);
            }
            Details::Semaphore(s) => {
                l.push(("magic", s.magic.clone()));
                l.push(("count", s.count.to_string()));
                l.push(("last taker", opt(s.last_pid, "none")));
                l.push(("sleepers", s.sleepers.to_string()));
                l.push(("last waited", ago(s.last_acquired_ns)));
            }
            Details::Event(e) => {
                l.push((
                    "state",
                    format!(
                        "{} (value {})",
                        if e.set { "set" } else { "clear" },
                        e.value
                    ),
                ));
            }
            Details::PyfastipcQueue(p) | Details::PyfastipcHistoryBuffer(p) => {
                l.push(("magic", p.magic.clone()));
                l.push((
                    "slots",
                    format!(
                        "{} of {} bytes, {} bytes of metadata",
                        p.num_slots, p.slot_size, p.meta_size
                    ),
                ));
                if let Some(h) = p.head {
                    l.push(("head", h.to_string()));
                }
                l.push(("tail", p.tail.to_string()));
                if let Some(m) = p.mode {
                    l.push(("mode", m.to_string()));
                }
                l.push((
                    "writers' mutex",
                    match p.writer_owner_pid {
                        Some(pid) if p.writer_locked => format!("locked by {pid}"),
                        _ if p.writer_locked => "locked".into(),
                        _ => "unlocked".into(),
                    },
                ));
            }
        }
        l.push(("attached", pids(&self.attached)));
        if self.problems.is_empty() {
            l.push(("problems", "none".into()));
        }
        for p in &self.problems {
            l.push(("problem", p.clone()));
        }
        l
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.lines();
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in lines {
            writeln!(f, "{k:<width$}  {v}")?;
        }
        Ok(())
    }
}
