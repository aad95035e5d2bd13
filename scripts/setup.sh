#!/usr/bin/env bash
# Idempotent set-up: Debian packages, the serving venv (.venv), the TensorFlow export venv
# (.venv-tf), the editable project install and the Azurite emulator. Safe to run again:
# each step is skipped when what it installs is already there and up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

say() { printf '\033[1;34m==> %s\033[0m\n' "$*"; }
# pip warns once per package about index folders missing on this machine; keep real errors.
pip_install() { "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}" 2> >(grep -v "^WARNING: Location 'file:" >&2); }

# --- Debian packages -----------------------------------------------------------------
# libb64-0d: perf_analyzer; libpython3.11: the Triton Python-backend stub links it;
# chromium + chromium-driver: the web app's browser tests; haproxy: the front door in front of Triton;
# postgresql: the sensor readings' database (the project starts its own cluster, as a non-root user).
APT_PKGS=(libb64-0d libpython3.11 chromium chromium-driver haproxy postgresql)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${SKIP_APT:-0}" != 1 ] && [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# --- Python virtual environments -----------------------------------------------------
install_venv() {  # $1 venv dir, $2 lock file
  local venv=$1 lock=$2 stamp="$1/.installed-lock.sha256"
  local want; want=$(sha256sum "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$venv up to date ($lock)"
    # cheap, and picks up packages added to the checkout since the last install
    pip_install "$venv" --no-deps --no-build-isolation -e .
    return
  fi
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$PYTHON" -m venv "$venv"; }
  say "installing $lock into $venv (first run takes a few minutes)"
  pip_install "$venv" -r "$lock"
  pip_install "$venv" --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
}
install_venv .venv requirements/serving.lock
# TensorFlow 2.21 needs protobuf>=6 and tritonclient 2.51 needs protobuf<5: the Keras export
# runs in its own venv. SKIP_TF=1 skips it (the Keras model is then not exported).
if [ "${SKIP_TF:-0}" != 1 ]; then install_venv .venv-tf requirements/tf-export.lock; fi

# --- Azurite (Blob Storage emulator, npm) --------------------------------------------
if [ -f scripts/setup_azurite.sh ]; then bash scripts/setup_azurite.sh; fi

say "set-up complete: $ROOT/.venv"
