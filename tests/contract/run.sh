#!/usr/bin/env bash
# The contract check: Schemathesis generates requests from infra/openapi.yaml
# and sends them to the deployed stack, as a portal user and as a reseller.
# Fails on any 5xx, an answer that does not fit the document, an undocumented
# status, a schema-valid request refused or an invalid one accepted (with the
# exceptions in schemathesis.toml, each explained there). Bounded: a few
# examples per operation, two workers, a time limit.
#
#   tests/contract/run.sh [max examples per operation, default 8]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
examples=${1:-8}
env_file=${METERAI_STACK_ENV:-.build/meterai-local.env}
api=$(grep '^METERAI_API_URL=' "$env_file" | cut -d= -f2-)
venv=tests/contract/.venv
want=$(sha256sum tests/contract/requirements.txt | cut -d' ' -f1)
if [[ "$(cat "$venv/.requirements.sha256" 2>/dev/null || true)" != "$want" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/contract/requirements.txt
  echo "$want" >"$venv/.requirements.sha256"
fi

# The emulator's API is `{id}.execute-api.localhost:4566`, a name the system
# resolver may not know: the requests go to loopback with that Host.
url=$api
host_header=()
host=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).netloc)' "$api")
if [[ $host == *.localhost:* || $host == *.localhost ]]; then
  url="http://127.0.0.1:${host##*:}"
  host_header=(-H "Host: $host")
fi

token=$(target/release/meterai-token "contract-$(date +%s%N)@example.com" | tail -1)
reseller_key=$(target/release/meterai-admin --env-file "$env_file" reseller create --name "Contract check" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')

run() {
  local who=$1 credential=$2
  shift 2
  echo "-- as $who"
  timeout 600 "$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml run infra/openapi.yaml \
    --url "$url" "${host_header[@]}" -H "Authorization: Bearer $credential" \
    --include-path-regex '^/v1/' --exclude-path /v1/payments/notifications --exclude-path /v1/resellers/events \
    --max-examples "$examples" --generation-deterministic --workers 2 \
    --checks all --exclude-checks unsupported_method --max-response-time 15 --no-color "$@"
}
run "a portal user" "$token" --exclude-path-regex '^/v1/customers'
run "a reseller" "$reseller_key"
