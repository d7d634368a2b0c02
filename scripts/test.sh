#!/usr/bin/env bash
# Runs every test of the workspace. First installs what the tests need when it is missing:
# the Python peers from PyPI (fastipc==0.1.5, slick-queue-py==2.3.0, and eclipse-zenoh==1.10.2
# for the bridge's interop tests) in a venv at .venv (or $FASTIPC_VENV). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${FASTIPC_VENV:-$PWD/.venv}
peers=("fastipc==0.1.5" "slick-queue-py==2.3.0" "eclipse-zenoh==1.10.2")
check='import importlib.metadata as m, sys
want = {"fastipc": "0.1.5", "slick-queue-py": "2.3.0", "eclipse-zenoh": "1.10.2"}
sys.exit(any(m.version(k) != v for k, v in want.items()))'

if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "scripts/test.sh: installing the Python peers into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${peers[@]}"
fi
export FASTIPC_PYTHON="$venv/bin/python"

cargo test --workspace --exclude fastipc-bench "$@" 2>&1
