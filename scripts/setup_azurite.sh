#!/usr/bin/env bash
# Install Azurite (Azure Blob Storage emulator) for batch_scoring from its lock file into the
# git-ignored batch_scoring/azurite/node_modules. Idempotent: skipped when the installed tree
# matches package-lock.json. Azurite 3.35.0 is the newest release whose engines.node accepts
# Node.js 20 (3.36+ need Node >= 21/22). Called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=batch_scoring/azurite
STAMP=$DIR/node_modules/.lock.sha256
say() { printf '\033[1;34m==> %s\033[0m\n' "$*"; }

if ! command -v npm >/dev/null 2>&1; then
  echo "setup_azurite: npm not found; install Node.js >= 20 (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ -x "$DIR/node_modules/.bin/azurite-blob" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  say "Azurite up to date ($DIR)"
  exit 0
fi
say "installing Azurite from $DIR/package-lock.json"
npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error
echo "$want" > "$STAMP"
say "Azurite $("$DIR/node_modules/.bin/azurite-blob" --version 2>/dev/null || echo '?') installed"
