//! Crash recovery in a loop: a process holding a `NamedMutex` or a `SharedCell`'s lock is
//! killed with SIGKILL, again and again, while this process waits for the lock. Every
//! kill must come back as `OwnerDied` naming the dead process (never a timeout, never a
//! plain success), and the lock must work normally afterwards. The detection time (from
//! the kill to `OwnerDied`) is printed, not asserted: it depends on the machine's load.
//!
//! 20 kills per object; `FASTIPC_LONG=1` makes it 100 (RELIABILITY.md has the figures).

mod cell_messages;
mod sync_support;

use std::process::Command;
use std::time::{Duration, Instant};

use cell_messages::{HALF_DONE, Tally};
use fastipc::named::Kind;
use fastipc::{LockError, NamedMutex, SharedCell};
use fastipc_testkit::{ChildGuard, Lines};
use sync_support::World;

/// Generous: the machine is shared.
const LONG: Duration = Duration::from_secs(60);

fn rounds() -> usize {
    if std::env::var_os("FASTIPC_LONG").is_some_and(|v| v != "0") {
        100
    } else {
        20
    }
}

/// Spawns a holder, waits for it to say "locked", and returns it.
fn holder(cmd: Command) -> (ChildGuard, Lines) {
    let mut child = ChildGuard::spawn(cmd);
    let lines = Lines::of(&mut child);
    lines.expect("locked", LONG);
    (child, lines)
}

/// Median and maximum of the detection times, in milliseconds.
fn summary(times: &mut [Duration]) -> String {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

#[test]
fn a_named_mutex_holder_killed_over_and_over_is_always_owner_died() {
    let mut world = World::new("rel-crash-mx");
    let name = world.name(Kind::Mutex, "rel-crash-mx");
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    let mut times = Vec::new();
    for round in 0..rounds() {
        let (mut child, _lines) = holder(world.peer(&["mutex-hold", &name]));
        let pid = child.id();
        assert_eq!(mutex.owner_pid(), Some(pid), "round {round}");
        // A waiter already blocked when the holder dies (the usual case).
        std::thread::scope(|s| {
            let waiter = s.spawn(|| mutex.lock_timeout(LONG).map(drop));
            std::thread::sleep(Duration::from_millis(2));
            let killed = Instant::now();
            child.kill();
            let result = waiter.join().unwrap();
            let took = killed.elapsed();
            match result {
                Err(LockError::OwnerDied(died)) => {
                    assert_eq!(died.dead_pid(), pid, "round {round}");
                    drop(died.into_guard());
                }
                other => panic!("round {round}: expected OwnerDied, got {other:?}"),
            }
            times.push(took);
        });
        // Recovered: free, and it locks and unlocks normally.
        assert_eq!(mutex.owner_pid(), None, "round {round}");
        drop(mutex.try_lock().expect("free after the takeover"));
    }
    eprintln!(
        "NamedMutex: {} holders SIGKILLed, {} OwnerDied; detection {}",
        times.len(),
        times.len(),
        summary(&mut times)
    );
}

#[test]
fn a_shared_cell_holder_killed_over_and_over_is_always_owner_died() {
    let world = World::new("rel-crash-cell");
    let name = fastipc_testkit::unique_name("rel-crash-cell");
    // The cell's segment (`__fastipc_cell_<name>`), removed even if the test fails.
    let _cleanup = fastipc_testkit::ShmCleanup::new()
        .segment(fastipc::named::cell::segment_name(&name).unwrap());
    let cell = SharedCell::<Tally>::open_or_create_in(&world.registry, &name).unwrap();
    let mut times = Vec::new();
    for round in 0..rounds() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-cell"));
        cmd.args(["hold", &name]).env("FASTIPC_PID_DIR", &world.dir);
        let (mut child, _lines) = holder(cmd);
        let pid = child.id();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| match cell.lock_timeout(LONG) {
                Err(LockError::OwnerDied(died)) => {
                    let dead = died.dead_pid();
                    let mut guard = died.into_guard();
                    // The half-done update is there to repair.
                    assert_eq!(guard.total, HALF_DONE, "round {round}");
                    guard.total = 0;
                    Ok(dead)
                }
                Err(e) => Err(e.to_string()),
                Ok(_) => Err("locked without OwnerDied".to_owned()),
            });
            std::thread::sleep(Duration::from_millis(2));
            let killed = Instant::now();
            child.kill();
            let result = waiter.join().unwrap();
            times.push(killed.elapsed());
            assert_eq!(result, Ok(pid), "round {round}");
        });
        assert_eq!(cell.load().unwrap().total, 0, "round {round}");
    }
    eprintln!(
        "SharedCell: {} holders SIGKILLed, {} OwnerDied; detection {}",
        times.len(),
        times.len(),
        summary(&mut times)
    );
}
