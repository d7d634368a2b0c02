#!/usr/bin/env bash
# Runs the in-process tests of the ring, the typed endpoints and the sync primitives under
# Miri (undefined behaviour, Stacked Borrows, data races, weak-memory effects), on heap
# buffers only: Miri cannot map shared memory, fork or signal processes, so tests that do
# are skipped by name below. Platform bits Miri cannot run have `cfg(miri)` stand-ins
# (PREFETCHW detection: none; the pid namespace: a fixed value).
#
# Needs a nightly toolchain with Miri (`rustup +nightly component add miri`). Passes only
# with zero reports. The race-prone tests run under several scheduler seeds. Takes a few
# minutes. Extra arguments go to every `cargo miri test` (e.g. `--no-fail-fast`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Seeds for the tests whose outcome depends on thread interleaving.
SEEDS=${MIRI_SEEDS:-0..4}
# rustix's futex call passes its timeout pointer through an integer argument
# (`val2 as usize as *const Timespec`), which Miri warns about unless provenance is
# permissive; nothing of fastipc's own casts integers to pointers.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-permissive-provenance}"

run() {
  local flags=$1
  shift
  echo "scripts/miri.sh: MIRIFLAGS='$MIRIFLAGS $flags' cargo +nightly miri test $*" >&2
  MIRIFLAGS="$MIRIFLAGS $flags" cargo +nightly miri test "$@"
}

# Unit tests of the queue (ring, leases, payload copies, typed endpoints). Skipped: tests
# that create shared-memory segments (`attach_`, `typed_open_or_create`,
# `commit_after_a_lap`: a second mapping of one segment laps a guard), one that
# allocates more than Miri has (`impossible_local_queues`), and a long guard stress test
# whose property the lease tests check directly (`guards_in_many_threads`), and the async
# receive's tests (`async_tests`: the waiter thread calls `futex_waitv`, which Miri does
# not implement).
run "-Zmiri-seed=1" -p fastipc --lib "$@" -- queue:: \
  --skip attach_ --skip typed_open_or_create --skip commit_after_a_lap \
  --skip impossible_local_queues \
  --skip guards_in_many_threads --skip async_tests

# The race-prone ones under more seeds: lapped readers against a producer (atomic payload
# copies), a guard's writes against the next lap's send (the lease floor's ordering).
run "-Zmiri-many-seeds=$SEEDS" -p fastipc --lib "$@" -- \
  lapped_readers a_guards_last_write a_single_message_copy work_stealing

# The typed endpoints across threads (integration tests on local queues). Skipped: the
# ones that create named queues.
run "-Zmiri-seed=1" --test queue_typed "$@" -- \
  --skip sleeping_consumer_is_woken --skip attaching_with_another_type \
  --skip racing_open_or_create

# The sync primitives on heap buffers. Skipped: tests that need other processes or
# segments (`dead`, `taken_over`: zombie children; `main_thread_exited`: a named segment)
# or read `/proc/self/task` (`unlock_wakes_a_sleeping_thread`). The watchdog tests leak
# their buffer on purpose (a hung thread may outlive the test), hence
# `-Zmiri-ignore-leaks`. Needs the mutex layout without overlapping u64/u32 atomics
# (issue 10): with them, Miri's weak-memory emulation stops with an internal error
# ("partially overlapping store buffer") at `init_writes_only_the_documented_bytes`.
run "-Zmiri-seed=1 -Zmiri-ignore-leaks" -p fastipc --lib "$@" -- sync:: \
  --skip dead --skip taken_over --skip main_thread_exited \
  --skip unlock_wakes_a_sleeping_thread

echo "scripts/miri.sh: no reports" >&2
