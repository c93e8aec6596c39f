#!/usr/bin/env bash
# Installs what `node tests/editors/vscode/run.mjs` needs, into git-ignored places; safe to run again.
#   apt:  chromium (the browser), ripgrep (fed to code-server's install), libkrb5-dev (code-server's native module)
#   npm:  code-server 4.100.3 (VS Code 1.100.3 on Node 20) into .tools/code-server,
#         playwright-core into tests/editors/vscode/node_modules (drives Debian's chromium; no browser download)
#   the extension: vscode-client/speclsp-<version>.vsix, built as a user builds it
#         (`npm ci && npm run package`); run.mjs installs it with `code-server --install-extension`
#   Python: SPECLSP_PYTHON (default .venv/bin/python) must import the server's dependencies
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/editors/vscode"
CODE_SERVER_VERSION=4.100.3
CODE_SERVER_DIR="$ROOT/.tools/code-server"
# @vscode/ripgrep (a code-server dependency) downloads rg from GitHub at install time; the network is
# closed, so its download cache is seeded with Debian's rg under the name and version it looks for.
RG_CACHE="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
RG_ARCHIVE="$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"

say() { printf '\n== %s\n' "$*"; }

apt_packages() {
  local missing=()
  for pkg in chromium ripgrep libkrb5-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

code_server() {
  local bin="$CODE_SERVER_DIR/node_modules/.bin/code-server"
  if [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION"; then
    return
  fi
  say "npm install code-server@$CODE_SERVER_VERSION into .tools/code-server"
  mkdir -p "$RG_CACHE" "$CODE_SERVER_DIR"
  [[ -f $RG_ARCHIVE ]] || tar czf "$RG_ARCHIVE" -C "$(dirname "$(command -v rg)")" rg
  [[ -f $CODE_SERVER_DIR/package.json ]] || echo '{"private": true}' >"$CODE_SERVER_DIR/package.json"
  (cd "$CODE_SERVER_DIR" &&
    npm_config_yes=true npm_config_unsafe_perm=true \
      npm install --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION")
  "$bin" --version
}

# `npm ci` only when node_modules is older than the lock file: a fresh `npm ci` deletes node_modules
# first, which would pull it from under anything else using it.
npm_ci() {
  local dir=$1
  if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    say "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
}

playwright() {
  npm_ci "$HERE"
}

extension() {
  npm_ci "$ROOT/vscode-client"
  say "package vscode-client (.vsix)"
  (cd "$ROOT/vscode-client" && npm run package)
}

python_env() {
  local python=${SPECLSP_PYTHON:-$ROOT/.venv/bin/python}
  if [[ ! -x $python ]]; then
    echo "missing $python: run 'make setup' first, or point SPECLSP_PYTHON at a Python with speclsp's dependencies" >&2
    exit 1
  fi
}

python_env
apt_packages
code_server
playwright
extension
say "ready: node tests/editors/vscode/run.mjs"
