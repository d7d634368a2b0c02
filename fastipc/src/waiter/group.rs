//! The waiter table (every registration, by group) and the loop of a group's thread.
//! The design and the ordering argument are in the [module docs](super).

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::{GROUP_WORDS, WaiterStats};
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope, WaitOutcome};
use crate::sys::waitv::{WaitWord, WaitvOutcome, waitv};

/// How often the fallback (no `futex_waitv`) re-polls every pending future.
pub const FALLBACK_POLL: Duration = Duration::from_millis(1);

/// Set when the threads poll instead of using `futex_waitv`; never cleared.
static FALLBACK: AtomicBool = AtomicBool::new(false);

/// Reads `FASTIPC_WAITER` once, before the first thread starts.
static ENV_READ: Once = Once::new();

/// Every registration, by group; one mutex for the whole table (arms and fires are short
/// and rare next to the waits they replace).
static TABLE: Mutex<Table> = Mutex::new(Table {
    groups: Vec::new(),
    next_id: 0,
    repolls: 0,
});

/// Where an armed registration lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    group: usize,
    id: u64,
}

struct Table {
    groups: Vec<Group>,
    next_id: u64,
    /// Registrations fired by their re-poll interval so far.
    repolls: u64,
}

struct Group {
    entries: Vec<Entry>,
    /// The thread's own word: incremented (and woken, when `sleeping`) by every arm.
    bell: &'static AtomicU32,
    /// The thread gathered its words and is about to sleep, or sleeps.
    sleeping: bool,
}

struct Entry {
    id: u64,
    /// The word's address: only handed to the kernel, never dereferenced.
    addr: usize,
    expected: u32,
    scope: Scope,
    waker: Waker,
    repoll_at: Option<Instant>,
}

fn table() -> MutexGuard<'static, Table> {
    // Nothing panics while holding the lock (wakers run outside it); should something,
    // the table is still consistent (every change is a single push, remove or store).
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn stats() -> WaiterStats {
    let t = table();
    WaiterStats {
        threads: t.groups.len(),
        registrations: t.groups.iter().map(|g| g.entries.len()).sum(),
        repolls: t.repolls,
        fallback: FALLBACK.load(Relaxed),
    }
}

pub(super) fn force_fallback() {
    FALLBACK.store(true, Relaxed);
    // Wake every thread so it switches now rather than at its next wake-up.
    let mut t = table();
    for g in &mut t.groups {
        ring(g);
    }
}

/// Tells the group's thread that its registrations changed.
fn ring(group: &mut Group) {
    // Relaxed: the bell is only read by the thread under the table's mutex or by the
    // kernel, which compares it after the thread's unlock; the mutex orders the first, and
    // the FUTEX_WAKE below (bucket lock) the second (module docs, "Why no wake-up is lost").
    group.bell.fetch_add(1, Relaxed);
    if group.sleeping {
        group.sleeping = false;
        futex::wake(group.bell, 1, Scope::Private);
    }
}

pub(super) fn arm(
    token: &mut Option<Token>,
    word: &AtomicU32,
    expected: u32,
    scope: Scope,
    repoll: Option<Duration>,
    waker: &Waker,
) -> bool {
    let addr = core::ptr::from_ref(word) as usize;
    let mut t = table();
    if let Some(tok) = *token {
        let group = &mut t.groups[tok.group];
        if let Some(e) = group.entries.iter_mut().find(|e| e.id == tok.id) {
            if !e.waker.will_wake(waker) {
                e.waker.clone_from(waker);
            }
            if (e.addr, e.expected, e.scope) != (addr, expected, scope) {
                (e.addr, e.expected, e.scope) = (addr, expected, scope);
                ring(group);
            }
            return true;
        }
        // It fired: arm anew.
        *token = None;
    }
    let g = match t.groups.iter().position(|g| g.entries.len() < GROUP_WORDS) {
        Some(g) => g,
        None => match start_group(&mut t) {
            Some(g) => g,
            None => return false,
        },
    };
    let id = t.next_id;
    t.next_id += 1;
    let group = &mut t.groups[g];
    group.entries.push(Entry {
        id,
        addr,
        expected,
        scope,
        waker: waker.clone(),
        repoll_at: repoll.and_then(repoll_moment),
    });
    ring(group);
    *token = Some(Token { group: g, id });
    true
}

/// Re-poll intervals from this long on are coarsened ([`repoll_moment`]).
const COARSE_FROM: Duration = Duration::from_millis(100);

/// When a registration armed now with re-poll interval `r` fires by itself: `r` from now,
/// rounded up, when `r >= COARSE_FROM`, to the next multiple of `r / 8` since a
/// process-wide origin, so that idle futures armed close together (a thousand idle
/// receives looking once a second) fire together, and their thread wakes once per
/// round rather than once per future. `None` when the moment is out of range (never).
fn repoll_moment(r: Duration) -> Option<Instant> {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let now = Instant::now();
    let at = now.checked_add(r)?;
    if r < COARSE_FROM {
        return Some(at);
    }
    let origin = *ORIGIN.get_or_init(|| now);
    let step = (r / 8).as_nanos();
    let since = at.saturating_duration_since(origin).as_nanos();
    let rounded = since.div_ceil(step).saturating_mul(step);
    let extra = u64::try_from(rounded - since).unwrap_or(u64::MAX);
    at.checked_add(Duration::from_nanos(extra))
}

pub(super) fn disarm(token: Token) {
    let mut t = table();
    let entries = &mut t.groups[token.group].entries;
    if let Some(i) = entries.iter().position(|e| e.id == token.id) {
        // No bell: the thread may keep the address in its current wait, which is
        // harmless (module docs), and drops it at its next gathering.
        entries.swap_remove(i);
    }
}

#[cfg(test)]
pub(super) fn is_armed(token: Token) -> bool {
    table().groups[token.group]
        .entries
        .iter()
        .any(|e| e.id == token.id)
}

#[cfg(test)]
pub(super) fn repoll_at(token: Token) -> Option<Instant> {
    table().groups[token.group]
        .entries
        .iter()
        .find(|e| e.id == token.id)
        .and_then(|e| e.repoll_at)
}

/// Starts the thread of a new group; its index, or `None` when the OS refused a thread.
fn start_group(t: &mut Table) -> Option<usize> {
    ENV_READ.call_once(|| {
        if std::env::var_os("FASTIPC_WAITER").is_some_and(|v| v == "poll") {
            FALLBACK.store(true, Relaxed);
        }
    });
    let g = t.groups.len();
    let bell: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
    std::thread::Builder::new()
        .name(format!("fastipc-waiter-{g}"))
        .spawn(move || run(g, bell))
        .ok()?;
    t.groups.push(Group {
        entries: Vec::with_capacity(GROUP_WORDS),
        bell,
        sleeping: false,
    });
    Some(g)
}

/// Removes the entries `fire` selects and collects their wakers.
fn fire_where(group: &mut Group, out: &mut Vec<Waker>, mut fire: impl FnMut(&Entry) -> bool) {
    let mut i = 0;
    while i < group.entries.len() {
        if fire(&group.entries[i]) {
            out.push(group.entries.swap_remove(i).waker);
        } else {
            i += 1;
        }
    }
}

/// The loop of group `g`'s thread: gather, sleep, fire, wake.
fn run(g: usize, bell: &'static AtomicU32) {
    let mut words: Vec<WaitWord> = Vec::with_capacity(GROUP_WORDS + 1);
    let mut ids: Vec<u64> = Vec::with_capacity(GROUP_WORDS);
    let mut fired: Vec<Waker> = Vec::new();
    let mut outcome = WaitvOutcome::Interrupted;
    let mut bell_seen = 0;
    let mut next_tick: Option<Instant> = None;
    loop {
        // 1. What the last wait said: fire those registrations.
        {
            let mut t = table();
            let group = &mut t.groups[g];
            group.sleeping = false;
            let now = Instant::now();
            match outcome {
                WaitvOutcome::Woken(i) if i > 0 => {
                    let w = words[i];
                    let addr = w.addr as usize;
                    fire_where(group, &mut fired, |e| {
                        e.addr == addr && e.expected == w.expected
                    });
                }
                // The bell rang: gather again. Otherwise a word differed (which one is
                // not said) or an address faulted: fire everything that was waited on.
                WaitvOutcome::Changed if bell.load(Relaxed) != bell_seen => {}
                WaitvOutcome::Changed | WaitvOutcome::Failed(Errno::FAULT) => {
                    fire_where(group, &mut fired, |e| ids.contains(&e.id));
                }
                // Refused arguments (EINVAL) cannot come from valid `&AtomicU32` words and
                // a normalised deadline; rather than fail the same way again, poll.
                WaitvOutcome::Failed(_) => {
                    fire_where(group, &mut fired, |e| ids.contains(&e.id));
                    FALLBACK.store(true, Relaxed);
                }
                WaitvOutcome::Unsupported => FALLBACK.store(true, Relaxed),
                WaitvOutcome::Woken(_) | WaitvOutcome::TimedOut | WaitvOutcome::Interrupted => {}
            }
            // The fallback's tick (scheduled at the gathering below): fire everything.
            if next_tick.is_some_and(|tick| tick <= now) {
                fire_where(group, &mut fired, |_| true);
                next_tick = None;
            }
            let before = fired.len();
            fire_where(group, &mut fired, |e| {
                e.repoll_at.is_some_and(|at| at <= now)
            });
            t.repolls += (fired.len() - before) as u64;
        }
        // 2. Wake outside the lock: a waker may poll (and arm) right away.
        for w in fired.drain(..) {
            w.wake();
        }
        // 3. Gather and announce the sleep, under the lock.
        let fallback = FALLBACK.load(Relaxed);
        let mut until: Option<Instant> = None;
        {
            let mut t = table();
            let group = &mut t.groups[g];
            bell_seen = bell.load(Relaxed);
            words.clear();
            ids.clear();
            words.push(WaitWord {
                addr: bell,
                expected: bell_seen,
                scope: Scope::Private,
            });
            for e in &group.entries {
                words.push(WaitWord {
                    addr: e.addr as *const AtomicU32,
                    expected: e.expected,
                    scope: e.scope,
                });
                ids.push(e.id);
                until = earliest(until, e.repoll_at);
            }
            if fallback && !group.entries.is_empty() {
                // At most one tick per FALLBACK_POLL: kept until it fires, so that arms
                // (which ring the bell) do not postpone it, nor make it fire at once.
                let tick = *next_tick.get_or_insert_with(|| Instant::now() + FALLBACK_POLL);
                until = earliest(until, Some(tick));
            }
            group.sleeping = true;
        }
        // 4. Sleep.
        let deadline = until.map_or(Deadline::NEVER, Deadline::from_instant);
        outcome = if fallback {
            match futex::wait(bell, bell_seen, deadline, Scope::Private) {
                WaitOutcome::Woken => WaitvOutcome::Woken(0),
                WaitOutcome::TimedOut => WaitvOutcome::TimedOut,
            }
        } else {
            waitv(&words, deadline)
        };
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
