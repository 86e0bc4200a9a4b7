#!/usr/bin/env bash
# Stops the local AWS stack started by start.sh (its state is in memory and goes with it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pidfile="$here/.state/ministack.pid"
if [[ -f "$pidfile" ]]; then
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    # setsid made it a process group leader: stop it and the function processes it spawned.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "MiniStack (pid $pid) stopped"
  fi
  rm -f "$pidfile"
fi
if [[ "${METERAI_EMULATOR:-ministack}" == localstack ]]; then
  docker compose -f "$here/docker-compose.yml" down
fi
