//! Test peer for the multi-process tests of the sync primitives. Each subcommand opens a
//! named object (registered in `$FASTIPC_PID_DIR`), does one job, prints one result line
//! on stdout and exits 0; failures print to stderr and exit non-zero. Every wait is
//! bounded.
//!
//! ```text
//! peer-sync mutex-incr NAME COUNTER_SEGMENT N      N increments under the mutex
//! peer-sync mutex-hold NAME                         lock, print "locked", wait to be killed
//! peer-sync mutex-lock NAME TIMEOUT_MS              lock; print "ok", "owner-died PID" or "timeout"
//! peer-sync sema-post NAME N                        post one token N times
//! peer-sync sema-take NAME N TIMEOUT_MS             take N tokens, each within the timeout
//! peer-sync event-wait NAME TIMEOUT_MS              print "waiting", then "set" or "timeout"
//! peer-sync event-set NAME                          set the event
//! peer-sync hold KIND NAME RELEASE_EVENT            open, print "ready", close once RELEASE_EVENT is set
//! ```

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fastipc::{LockError, NamedEvent, NamedMutex, NamedSemaphore, Segment};
use fastipc_testkit::peer::{self, Result, say};

/// How long a peer waits for anything before giving up.
const LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    peer::main("peer-sync", run)
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::error::Error + 'static,
{
    Ok(s.parse::<T>()?)
}

fn run(args: &[&str]) -> Result<String> {
    match args {
        ["mutex-incr", name, counter, n] => {
            let mutex = NamedMutex::open(name)?;
            let seg = Segment::open(counter, 8)?;
            let cell = seg.mem().atomic_u64(0)?;
            let mut died = 0;
            for _ in 0..num::<u64>(n)? {
                let _guard = mutex.lock().unwrap_or_else(|d| {
                    died += 1;
                    d.into_guard()
                });
                // Deliberately not an atomic increment: only the lock keeps it exact.
                let v = cell.load(Ordering::Relaxed);
                cell.store(v + 1, Ordering::Relaxed);
            }
            Ok(format!("done owner-died={died}"))
        }
        ["mutex-hold", name] => {
            let mutex = NamedMutex::open(name)?;
            let guard = mutex.lock().unwrap_or_else(|d| d.into_guard());
            say("locked");
            std::thread::sleep(LIMIT);
            drop(guard);
            Err("was not killed in time".into())
        }
        ["mutex-lock", name, timeout_ms] => {
            let mutex = NamedMutex::open(name)?;
            say("waiting");
            let timeout = Duration::from_millis(num(timeout_ms)?);
            Ok(match mutex.lock_timeout(timeout) {
                Ok(_guard) => "ok".to_owned(),
                Err(LockError::OwnerDied(died)) => format!("owner-died {}", died.dead_pid()),
                Err(LockError::TimedOut) => "timeout".to_owned(),
                Err(other) => format!("error {other}"),
            })
        }
        ["sema-post", name, n] => {
            let sem = NamedSemaphore::open(name, 0)?;
            let n: u32 = num(n)?;
            for _ in 0..n {
                sem.post(1)?;
            }
            Ok(format!("posted {n}"))
        }
        ["sema-take", name, n, timeout_ms] => {
            let sem = NamedSemaphore::open(name, 0)?;
            let n: u32 = num(n)?;
            let timeout = Duration::from_millis(num(timeout_ms)?);
            for i in 0..n {
                sem.wait_timeout(timeout)
                    .map_err(|e| format!("token {i} of {n}: {e}"))?;
            }
            Ok(format!("took {n}"))
        }
        ["event-wait", name, timeout_ms] => {
            let event = NamedEvent::open(name)?;
            say("waiting");
            let timeout = Duration::from_millis(num(timeout_ms)?);
            Ok(match event.wait_timeout(timeout) {
                Ok(()) => "set".to_owned(),
                Err(_) => "timeout".to_owned(),
            })
        }
        ["event-set", name] => {
            NamedEvent::open(name)?.set();
            Ok("set".to_owned())
        }
        ["hold", kind, name, release] => {
            let release = NamedEvent::open(release)?;
            let held: Box<dyn std::any::Any> = match *kind {
                "mutex" => Box::new(NamedMutex::open(name)?),
                "semaphore" => Box::new(NamedSemaphore::open(name, 0)?),
                "event" => Box::new(NamedEvent::open(name)?),
                other => return Err(format!("unknown kind {other:?}").into()),
            };
            say("ready");
            release.wait_timeout(LIMIT)?;
            drop(held);
            Ok("closed".to_owned())
        }
        _ => Err("usage: see the source of src/bin/peer-sync.rs".into()),
    }
}
