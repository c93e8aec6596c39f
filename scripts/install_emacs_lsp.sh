#!/usr/bin/env bash
# Install Emacs (Debian's emacs-nox) and, into a private folder, lsp-mode 10 (the first release with
# `lsp-inline-completion`) and eglot, for the editor end-to-end test (tests/editors/test_editor_emacs.py) and
# for trying the server by hand.
#
#   scripts/install_emacs_lsp.sh [DEST]      DEST defaults to .tools/emacs-lsp (git-ignored)
#
# Prints the path of DEST/load-path.el on stdout: an elisp file that puts lsp-mode, its dependencies
# and eglot on `load-path` and loads their autoloads (as package.el would), so
# `emacs -Q -l DEST/load-path.el` can `(require 'lsp-inline-completion)` and `(require 'eglot)`. Exit status: 0 installed (or already there), 2 this machine cannot do it (not
# Debian, no root to install emacs-nox, the Debian suites cannot be reached, a pinned package is gone),
# 1 anything else: a bug to look at. The test skips only on 2.
#
# Why it is done this way:
# - Debian bookworm ships Emacs 28.2 (enough: lsp-inline-completion needs 28.1) but no lsp-mode 10;
#   lsp-mode 10.0.0 and its dependencies are architecture-independent elisp in Debian sid, so the
#   packages are downloaded (never installed) and unpacked with `dpkg -x`. Emacs loads them from
#   their `elpa-src` folders as source; nothing is byte-compiled.
# - Eglot is not built into Emacs 28: bookworm's elpa-eglot 1.9 is unpacked the same way (its
#   dependencies jsonrpc, project, xref, eldoc, flymake, seq are the ones built into Emacs 28.2).
# - apt runs with a separate state under DEST/apt-alt (its own sources.list, lists and cache); the
#   system's apt configuration is never touched. The only system change is `apt-get install emacs-nox`.
# - The mirror is the one the machine already uses, read from its apt sources.
# - Versions are pinned: sid moves. lsp-mode itself must be exactly LSP_MODE_VERSION (testing is
#   searched too, so the pin keeps working after sid moves on); a dependency whose pinned version
#   is gone is taken at the newest version the suites have.
# - Idempotent: an existing installation whose load-path.el loads lsp-mode LSP_MODE_VERSION and
#   eglot is reused without touching the network; downloaded .debs are reused.
set -euo pipefail

LSP_MODE_VERSION="10.0.0-1"
SUITES=(sid testing)
# lsp-mode's dependencies (Package-Requires: dash, f, ht, spinner, markdown-mode, lv; f needs s) at
# the versions this was tested with.
DEPS=(elpa-dash=2.20.0+dfsg-1 elpa-f=0.21.0-1 elpa-ht=2.3-3 elpa-spinner=1.7.4-3
      elpa-markdown-mode=2.8-1 elpa-lv=0.15.0-4 elpa-s=1.13.0-2)
# Eglot for Emacs 28, from the system's own release.
EGLOT=elpa-eglot=1.9-2
EGLOT_SUITE=bookworm
MIN_EMACS=28.1

die() { echo "install_emacs_lsp.sh: error: $*" >&2; exit 1; }
unavailable() { echo "install_emacs_lsp.sh: unavailable here: $*" >&2; exit 2; }
log() { echo "install_emacs_lsp.sh: $*" >&2; }

DEST="${1:-.tools/emacs-lsp}"
mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"
ROOT="$DEST/root"
ELPA="$ROOT/usr/share/emacs/site-lisp/elpa-src"
LOAD_PATH_EL="$DEST/load-path.el"
WANT="lsp-mode ${LSP_MODE_VERSION%-*}"

emacs_ok() {  # Emacs on PATH, at least MIN_EMACS
    local out
    command -v emacs >/dev/null \
        && out="$(emacs --batch -Q --eval "(princ (if (version<= \"$MIN_EMACS\" emacs-version) \"ok\" \"old\"))" 2>/dev/null)" \
        && [ "$out" = ok ]
}

# (output captured first: with pipefail, a reader that stops early would fail the pipe)
installed_ok() {  # load-path.el sets up the autoloads and loads the pinned lsp-mode and eglot
    local out
    [ -f "$LOAD_PATH_EL" ] && emacs_ok && out="$(emacs --batch -Q -l "$LOAD_PATH_EL" --eval \
        "(progn (unless (fboundp 'lsp-lens--enable) (error \"no autoloads\"))
                (require 'lsp-inline-completion) (require 'eglot)
                (princ (car (split-string (lsp-version) \",\"))))" 2>/dev/null)" && [ "$out" = "$WANT" ]
}

if installed_ok; then
    log "already installed: $WANT, eglot, $(emacs --version | head -n1)"
    echo "$LOAD_PATH_EL"
    exit 0
fi

command -v apt-get >/dev/null && command -v dpkg >/dev/null || unavailable "needs a Debian system (apt-get and dpkg)"

# --- emacs-nox: the one package installed into the system ----------------------------------------
if ! emacs_ok; then
    if command -v emacs >/dev/null; then
        unavailable "$(emacs --version | head -n1) is older than $MIN_EMACS, which lsp-inline-completion needs"
    fi
    [ "$(id -u)" = 0 ] || unavailable "Emacs is missing and installing it needs root: run 'apt-get install -y emacs-nox'"
    log "installing emacs-nox"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends emacs-nox >&2 \
        || unavailable "'apt-get install -y emacs-nox' failed (run 'apt-get update' first?)"
    emacs_ok || die "emacs-nox is installed but 'emacs' does not run, or is older than $MIN_EMACS"
fi

# --- a separate apt state on the machine's own mirror (scripts/debian_alt.sh) ------------------
source "$(dirname "${BASH_SOURCE[0]}")/debian_alt.sh"
alt_apt_setup "$DEST" "${SUITES[*]} $EGLOT_SUITE" "sid $EGLOT_SUITE"

# --- download: exact lsp-mode version, dependencies from the first suite that has them -----------
cd "$DEST/debs"
# .debs of another pinned lsp-mode from an earlier run would all be unpacked together: start afresh
if compgen -G "elpa-lsp-mode_*.deb" >/dev/null && ! compgen -G "elpa-lsp-mode_${LSP_MODE_VERSION}_*.deb" >/dev/null; then
    rm -f ./*.deb
fi
alt_download "elpa-lsp-mode=$LSP_MODE_VERSION" \
    || unavailable "elpa-lsp-mode $LSP_MODE_VERSION is in none of: ${SUITES[*]} (the pin needs updating)"
for pinned in "${DEPS[@]}"; do
    pkg="${pinned%%=*}"
    specs=("$pinned")
    for suite in "${SUITES[@]}"; do specs+=("$pkg/$suite"); done
    alt_download "${specs[@]}" || unavailable "cannot download $pkg from any of: ${SUITES[*]}"
done
alt_download "$EGLOT" "${EGLOT%%=*}/$EGLOT_SUITE" || unavailable "cannot download ${EGLOT%%=*} from $EGLOT_SUITE"

# --- unpack and write load-path.el ---------------------------------------------------------------
rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$DEST"/debs/*.deb; do
    dpkg -x "$deb" "$ROOT" || die "dpkg -x $deb failed"
done
compgen -G "$ELPA/lsp-mode-*/lsp-inline-completion.el" >/dev/null \
    || die "the elpa-lsp-mode package has no $ELPA/lsp-mode-*/lsp-inline-completion.el"
compgen -G "$ELPA/eglot-*/eglot.el" >/dev/null || die "the elpa-eglot package has no $ELPA/eglot-*/eglot.el"

{
    echo ";;; load-path.el --- lsp-mode ${LSP_MODE_VERSION%-*}, its dependencies and eglot from Debian  -*- lexical-binding: t -*-"
    echo ";; Written by scripts/install_emacs_lsp.sh: \`emacs -Q -l $LOAD_PATH_EL'."
    echo ";; What package.el does for installed packages: each folder on load-path, then its autoloads."
    for dir in "$ELPA"/*/; do
        printf '(add-to-list (quote load-path) "%s")\n' "${dir%/}"
    done
    for autoloads in "$ELPA"/*/*-autoloads.el; do
        printf '(load "%s" nil t)\n' "${autoloads%.el}"
    done
} > "$LOAD_PATH_EL.tmp"
mv "$LOAD_PATH_EL.tmp" "$LOAD_PATH_EL"

installed_ok || die "lsp-mode does not load: try emacs --batch -Q -l $LOAD_PATH_EL --eval \"(require 'lsp-inline-completion)\""
log "installed: $WANT, eglot, $(emacs --version | head -n1)"
echo "$LOAD_PATH_EL"
