# Shared by scripts/test and scripts/bench: installs the test tools when missing.

# ensure_commands "cmd:debian-package" ...: apt-get installs the packages of missing commands.
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  local as_root=()
  [[ $(id -u) == 0 ]] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_test_venv: tests/.venv with tests/requirements.txt (rebuilt when the pins change).
ensure_test_venv() {
  local venv=tests/.venv want
  want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
  if [[ "$(cat "$venv/.requirements.sha256" 2>/dev/null || true)" != "$want" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
    echo "$want" >"$venv/.requirements.sha256"
  fi
}

# ensure_portal_deps: the portal's npm packages (pdf.js, built into the portal
# function; playwright-core for its browser tests), from its lock file;
# installed again when the lock file changes.
ensure_portal_deps() {
  local want
  want=$(sha256sum portal/package-lock.json | cut -d' ' -f1)
  if [[ "$(cat portal/node_modules/.lock.sha256 2>/dev/null || true)" != "$want" ]]; then
    npm ci --prefix portal --no-audit --no-fund --loglevel=error
    echo "$want" >portal/node_modules/.lock.sha256
  fi
}
