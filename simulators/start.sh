#!/usr/bin/env bash
# Starts the Midtrans simulator on 127.0.0.1:4590 (loopback only) unless one answers
# there already. The local stage's functions call it instead of Midtrans.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${MIDTRANS_SIMULATOR_PORT:-4590}
url="http://127.0.0.1:$port"
mkdir -p "$root/.build"
if curl -fsS -m 2 "$url/_sim/health" >/dev/null 2>&1; then
  echo "Midtrans simulator already running at $url"
  exit 0
fi
nohup python3 "$root/simulators/midtrans.py" --port "$port" \
  --server-key "${MIDTRANS_SERVER_KEY:-SB-Mid-server-meterai-local}" \
  --stack-env "$root/.build/meterai-local.env" >"$root/.build/midtrans-simulator.log" 2>&1 &
echo $! >"$root/.build/midtrans-simulator.pid"
for _ in $(seq 1 50); do
  curl -fsS -m 2 "$url/_sim/health" >/dev/null 2>&1 && { echo "Midtrans simulator running at $url"; exit 0; }
  sleep 0.1
done
echo "Midtrans simulator did not start; see .build/midtrans-simulator.log" >&2
exit 1
