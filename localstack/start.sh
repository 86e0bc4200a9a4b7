#!/usr/bin/env bash
# Starts the local AWS stack on 127.0.0.1:4566 and waits until it is healthy.
# Reuses a stack that already answers there (MiniStack or LocalStack).
#   METERAI_EMULATOR=ministack (default) | localstack (docker compose, needs LOCALSTACK_AUTH_TOKEN)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${METERAI_EMULATOR_PORT:-4566}
url="http://127.0.0.1:${port}"
state="$here/.state"
mkdir -p "$state"

healthy() { curl -fsS -m 2 "$url/_localstack/health" >/dev/null 2>&1; }

wait_healthy() {
  local deadline=$((SECONDS + ${1:-90}))
  until healthy; do
    if ((SECONDS > deadline)); then
      echo "local AWS stack did not become healthy at $url" >&2
      [[ -f "$state/ministack.log" ]] && tail -n 40 "$state/ministack.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

if healthy; then
  echo "local AWS stack already running at $url"
  exit 0
fi

case "${METERAI_EMULATOR:-ministack}" in
  localstack)
    docker compose -f "$here/docker-compose.yml" up -d
    wait_healthy 180
    ;;
  ministack)
    venv="$here/.venv"
    want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
    have=$(cat "$venv/.requirements.sha256" 2>/dev/null || true)
    if [[ "$want" != "$have" ]]; then
      echo "installing MiniStack into $venv"
      rm -rf "$venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
      echo "$want" >"$venv/.requirements.sha256"
    fi
    # A stale pid file from a crashed run must not block a new start.
    rm -f "$state/ministack.pid"
    # Loopback only; state lives in memory, so a restart is a clean slate.
    (
      cd "$state"
      env BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" \
        AWS_ENDPOINT_URL="$url" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
        LOG_LEVEL="${MINISTACK_LOG_LEVEL:-INFO}" \
        setsid nohup "$venv/bin/python" -m hypercorn ministack.app:app \
        --bind "127.0.0.1:${port}" --keep-alive 75 \
        >"$state/ministack.log" 2>&1 </dev/null &
      echo $! >"$state/ministack.pid"
    )
    wait_healthy 90
    echo "MiniStack running at $url (pid $(cat "$state/ministack.pid"), log $state/ministack.log)"
    ;;
  *)
    echo "unknown METERAI_EMULATOR=${METERAI_EMULATOR}; use ministack or localstack" >&2
    exit 2
    ;;
esac
