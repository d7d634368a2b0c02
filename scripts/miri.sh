#!/usr/bin/env bash
# Runs the in-process tests of the ring, the typed endpoints and the sync primitives under
# Miri (undefined behaviour, Stacked Borrows, data races, weak-memory effects), on heap
# buffers only: Miri cannot map shared memory, fork or signal processes, so tests that do
# are marked `#[cfg_attr(miri, ignore = "reason")]` where they are written, and Miri
# lists them as ignored with the reason. Platform bits Miri cannot run have `cfg(miri)`
# stand-ins (PREFETCHW detection: none; the pid namespace: a fixed value), and the
# multi-thread tests send fewer messages under `cfg(miri)`.
#
# Needs a nightly toolchain with Miri (`rustup +nightly component add miri`). Passes only
# with zero reports. The race-prone tests run under several scheduler seeds. Takes about
# 6.5 min of CPU (docs/CHECKING.md). Extra arguments go to every `cargo miri test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Seeds for the tests whose outcome depends on thread interleaving.
SEEDS=${MIRI_SEEDS:-0..4}
# rustix's futex call passes its timeout pointer through an integer argument
# (`val2 as usize as *const Timespec`), which Miri warns about unless provenance is
# permissive; nothing of fastipc's own casts integers to pointers.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-permissive-provenance}"

# Which steps to run, in order: all but `ring_mutex` by default (it is a part of them);
# `.ci/run` runs `ring_mutex`.
STEPS=${MIRI_STEPS:-queue seeds queue_typed sync}

# Each step reports its wall time and its CPU time (Miri interprets on one thread, so on
# an idle machine the wall time is about the CPU time).
TIMEFORMAT="scripts/miri.sh: step took %0R s (CPU: %0U s user, %0S s system)"

run() {
  local flags=$1
  shift
  echo "scripts/miri.sh: MIRIFLAGS='$MIRIFLAGS $flags' cargo +nightly miri test $*" >&2
  time MIRIFLAGS="$MIRIFLAGS $flags" cargo +nightly miri test "$@"
}

for step in $STEPS; do
  case $step in
  # Unit tests of the queue (ring, leases, payload copies, typed endpoints). Ignored
  # under Miri: shared-memory segments, a 2^52-byte allocation, and the async receive's
  # tests that wait (its waiter thread calls `futex_waitv`, which Miri lacks).
  queue)
    run "-Zmiri-seed=1" -p fastipc --lib "$@" -- queue:: ;;
  # The race-prone ones under more seeds: lapped readers against a producer (atomic
  # payload copies), a guard's writes against the next lap's send (the lease floor's
  # ordering).
  seeds)
    run "-Zmiri-many-seeds=$SEEDS" -p fastipc --lib "$@" -- \
      lapped_readers a_guards_last_write a_single_message_copy work_stealing ;;
  # The typed endpoints across threads (integration tests on local queues).
  queue_typed)
    run "-Zmiri-seed=1" --test queue_typed "$@" ;;
  # The sync primitives on heap buffers. Ignored under Miri: what needs other processes,
  # segments, Python or `/proc`, and the async waits (the waiter thread's `futex_waitv`). The watchdog tests leak their buffer on purpose (a hung
  # thread may outlive the test), hence `-Zmiri-ignore-leaks`. Needs the mutex layout without overlapping u64/u32 atomics
  # (issue 10): with them, Miri's weak-memory emulation stops with an internal error
  # ("partially overlapping store buffer") at `init_writes_only_the_documented_bytes`.
  sync)
    run "-Zmiri-seed=1 -Zmiri-ignore-leaks" -p fastipc --lib "$@" -- sync:: ;;
  # The subset `.ci/run` runs, in one build: the ring (lossy and lossless claims,
  # payload copies, shared cursors) and the mutex.
  ring_mutex)
    run "-Zmiri-seed=1 -Zmiri-ignore-leaks" -p fastipc --lib "$@" -- \
      queue::ring:: sync::mutex:: ;;
  *)
    echo "scripts/miri.sh: unknown step '$step' (queue seeds queue_typed sync ring_mutex)" >&2
    exit 2 ;;
  esac
done

echo "scripts/miri.sh: no reports" >&2
