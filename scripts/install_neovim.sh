#!/usr/bin/env bash
# Install Neovim 0.12.4 (the first release with `vim.lsp.inline_completion`) into a private folder,
# for the editor end-to-end test (tests/editors/test_editor_neovim.py) and for trying the server by hand.
#
#   scripts/install_neovim.sh [DEST]      DEST defaults to .tools/nvim12 (git-ignored)
#
# Prints the path of a runnable wrapper, DEST/nvim, on stdout. Exit status: 0 installed (or already
# there), 2 this machine cannot do it (not Debian/x86_64, no root for patchelf, the Debian suites cannot
# be reached, a pinned package is gone), 1 anything else: a bug to look at. The test skips only on 2.
#
# Why it is done this way:
# - Debian bookworm ships Neovim 0.7.2; 0.12.4 exists only as Debian sid (and later testing) packages,
#   built against a newer glibc than this system has. So the packages and their libraries are
#   downloaded (never installed) and unpacked with `dpkg -x`, and the binary is patched with patchelf to
#   use the unpacked dynamic loader and libraries. An rpath (not LD_LIBRARY_PATH) keeps the processes
#   Neovim starts, such as the language server, on the system's own libraries.
# - apt runs with a separate state under DEST/apt-alt (its own sources.list, lists and cache); the
#   system's apt configuration is never touched. The only system change is `apt-get install patchelf`.
# - The mirror is the one the machine already uses, read from its apt sources.
# - Versions are pinned: sid moves. Neovim itself must be exactly NVIM_VERSION; testing is searched
#   too, so the pin keeps working for a while after sid moves on (0.12.4-1 migrates there).
# - Idempotent: an existing wrapper that reports the pinned version is reused, downloaded .debs are
#   reused.
set -euo pipefail

NVIM_VERSION="0.12.4-1"
SUITES=(sid testing)
# Every library Neovim links that bookworm has too old or not at all, at the versions this was tested
# with; libc6 brings the loader, libgcc-s1 matches that glibc. When sid has moved past a pinned library
# version, the newest one in SUITES is taken instead (Neovim's own version is never relaxed).
LIBS=(libc6=2.43-7 libgcc-s1=16.2.0-4 libluajit-5.1-2=2.1.0+openresty20251030-1+b2
      libluajit-5.1-common=2.1.0+openresty20251030-1 libtree-sitter0.26=0.26.11-1 libunibilium4=2.1.4-1
      libutf8proc3=2.11.3-2 libuv1t64=1.53.0-1 lua-lpeg=1.1.0-4 lua-luv=1.51.0-1-1+b1)

die() { echo "install_neovim.sh: error: $*" >&2; exit 1; }
unavailable() { echo "install_neovim.sh: unavailable here: $*" >&2; exit 2; }
log() { echo "install_neovim.sh: $*" >&2; }

DEST="${1:-.tools/nvim12}"
mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"
ROOT="$DEST/root"
LIBDIR="$ROOT/usr/lib/x86_64-linux-gnu"
WRAPPER="$DEST/nvim"
WANT="NVIM v${NVIM_VERSION%-*}"

# (output captured first: with pipefail, a reader that stops early would fail the pipe)
wrapper_works() {
    local out
    [ -x "$WRAPPER" ] && out="$("$WRAPPER" --version 2>/dev/null)" && [ "${out%%$'\n'*}" = "$WANT" ]
}

if wrapper_works; then
    log "already installed: $WANT"
    echo "$WRAPPER"
    exit 0
fi

[ "$(uname -m)" = x86_64 ] || unavailable "only x86_64 is supported (this is $(uname -m))"
command -v apt-get >/dev/null && command -v dpkg >/dev/null || unavailable "needs a Debian system (apt-get and dpkg)"

# --- patchelf: the one package installed into the system ---------------------------------------
if ! command -v patchelf >/dev/null; then
    [ "$(id -u)" = 0 ] || unavailable "patchelf is missing and installing it needs root: run 'apt-get install -y patchelf'"
    log "installing patchelf"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q patchelf >&2 \
        || unavailable "'apt-get install -y patchelf' failed (run 'apt-get update' first?)"
fi

# --- a separate apt state on the machine's own mirror (scripts/debian_alt.sh) ------------------
source "$(dirname "${BASH_SOURCE[0]}")/debian_alt.sh"
alt_apt_setup "$DEST" "${SUITES[*]}" "sid"

# --- download: exact Neovim version, libraries from the first suite that has them ---------------
cd "$DEST/debs"
# .debs of another pinned Neovim from an earlier run would all be unpacked together: start afresh
if compgen -G "neovim_*.deb" >/dev/null && ! compgen -G "neovim_${NVIM_VERSION}_*.deb" >/dev/null; then
    rm -f ./*.deb
fi
for pkg in neovim neovim-runtime; do
    alt_download "$pkg=$NVIM_VERSION" || unavailable "$pkg $NVIM_VERSION is in none of: ${SUITES[*]} (the pin needs updating)"
done
for pinned in "${LIBS[@]}"; do
    pkg="${pinned%%=*}"
    specs=("$pinned")
    for suite in "${SUITES[@]}"; do specs+=("$pkg/$suite"); done
    alt_download "${specs[@]}" || unavailable "cannot download $pkg from any of: ${SUITES[*]}"
done

# --- unpack and patch ----------------------------------------------------------------------------
rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$DEST"/debs/*.deb; do
    dpkg -x "$deb" "$ROOT" || die "dpkg -x $deb failed"
done
[ -x "$ROOT/usr/bin/nvim" ] || die "the neovim package has no usr/bin/nvim"
[ -e "$LIBDIR/ld-linux-x86-64.so.2" ] || die "the libc6 package has no $LIBDIR/ld-linux-x86-64.so.2"

cp "$ROOT/usr/bin/nvim" "$DEST/nvim-patched"
patchelf --set-interpreter "$LIBDIR/ld-linux-x86-64.so.2" --set-rpath "$LIBDIR" "$DEST/nvim-patched" \
    || die "patchelf failed"

cat > "$WRAPPER" <<EOF
#!/bin/sh
# Neovim $NVIM_VERSION from Debian, unpacked and patched by scripts/install_neovim.sh.
VIMRUNTIME="$ROOT/usr/share/nvim/runtime"
export VIMRUNTIME
exec "$DEST/nvim-patched" "\$@"
EOF
chmod +x "$WRAPPER"

wrapper_works || die "the installed wrapper does not run: try '$WRAPPER --version'"
log "installed: $WANT"
echo "$WRAPPER"
