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
