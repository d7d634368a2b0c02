#!/usr/bin/env bash
# Instructions per message on each side of the queue, counted by callgrind (repeatable
# here, unlike time: this virtual machine has no hardware counters). Runs each case of
# fastipc-bench's `instructions` workload under `valgrind --tool=callgrind` and prints a
# Markdown table: the inclusive instructions of the send and receive functions divided
# by the messages moved. Usage: bash scripts/instructions.sh [CASE...] (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }
cargo build --release --quiet -p fastipc-bench --bin instructions
bin=${CARGO_TARGET_DIR:-target}/release/instructions
messages=102400
cases=("$@")
[ ${#cases[@]} -gt 0 ] || read -r -a cases <<<"$("$bin" list)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| case | send (instr./message) | receive (instr./message) |"
echo "|---|---:|---:|"
for case in "${cases[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$case" "$bin" "$case" >/dev/null 2>"$out/$case.log" \
    || { cat "$out/$case.log" >&2; exit 1; }
  callgrind_annotate --inclusive=yes "$out/$case" >"$out/$case.txt" 2>/dev/null
  # The inclusive count of the function named $1 (its first line in the annotation).
  count() { awk -v f="instructions::$1 " '{ line = $0 " " } index(line, f) { gsub(",", "", $1); print $1; exit }' "$out/$case.txt"; }
  case $case in
    *batch16) send=$(count send_16); recv=$(count recv_16) ;;
    arrayqueue) send=$(count push_one); recv=$(count pop_one) ;;
    *single) send=$(count send_one_single); recv=$(count recv_one) ;;
    *) send=$(count send_one); recv=$(count recv_one) ;;
  esac
  awk -v c="$case" -v s="${send:-0}" -v r="${recv:-0}" -v m="$messages" \
    'BEGIN { printf "| %s | %.1f | %.1f |\n", c, s / m, r / m }'
done
