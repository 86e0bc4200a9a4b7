#!/usr/bin/env bash
# Stops the Midtrans simulator started by simulators/start.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pid_file="$root/.build/midtrans-simulator.pid"
if [[ -f "$pid_file" ]]; then
  kill "$(cat "$pid_file")" 2>/dev/null || true
  rm -f "$pid_file"
fi
