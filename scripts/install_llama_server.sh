#!/usr/bin/env bash
# Build llama.cpp's llama-server (CPU only) for the tests that run our prompts on a real shared
# inference server (tests/engine/test_llama_server.py), and keep the matching GGUF converter.
#
#   scripts/install_llama_server.sh [DEST]     DEST defaults to .tools/llama-server (git-ignored)
#
# Leaves DEST/bin/llama-server and DEST/src (the llama.cpp tree: convert_hf_to_gguf.py, gguf-py) and
# prints the path of the binary on stdout. Exit status: 0 built (or already there), 2 impossible here
# (no cmake or C++ compiler, PyPI unreachable), 1 anything else: a bug to look at.
#
# Why it is done this way:
# - The sources are the ones vendored in the llama-cpp-python sdist on PyPI (scripts/llama_cpp_sdist.sh),
#   so the server and the converter always come from one llama.cpp commit.
# - Only the llama-server target, CPU only, no libcurl (nothing is downloaded at run time), no tests;
#   static libraries, so the binary runs from anywhere. The build takes minutes on 2 cores: it is
#   done once per checkout and reused while `llama-server --version` runs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/llama_cpp_sdist.sh"
DEST="${1:-$HERE/../.tools/llama-server}"
CACHE="${LLAMA_CPP_CACHE:-$HERE/../.tools/llama-cpp}"
JOBS="${JOBS:-2}"
mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"
BIN="$DEST/bin/llama-server"
STAMP="$DEST/version"

# reused only when it runs and was built from the pinned sources
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$LLAMA_SDIST_NAME" ] && "$BIN" --version >/dev/null 2>&1; then
    log "already built from $LLAMA_SDIST_NAME"
    echo "$BIN"
    exit 0
fi

command -v cmake >/dev/null || unavailable "cmake is missing (apt-get install cmake)"
command -v c++ >/dev/null || command -v g++ >/dev/null || unavailable "no C++ compiler (apt-get install g++)"

tarball="$(llama_sdist "$CACHE")"
# the tree without the vocabulary files, docs and media: only what the build and the converter read
rm -rf "$DEST/src" "$DEST/build" "$DEST/bin" "$STAMP"
mkdir -p "$DEST/src"
tar xzf "$tarball" -C "$DEST/src" --strip-components=3 \
    --exclude="$LLAMA_VENDOR/models/*.gguf*" --exclude="$LLAMA_VENDOR/docs" --exclude="$LLAMA_VENDOR/media" \
    --exclude="$LLAMA_VENDOR/.git" "$LLAMA_VENDOR" || die "cannot extract $LLAMA_VENDOR from $tarball"
[ -f "$DEST/src/CMakeLists.txt" ] || die "$tarball has no $LLAMA_VENDOR/CMakeLists.txt"

log "building llama-server (CPU, -j$JOBS); this takes several minutes"
start=$(date +%s)
cmake -S "$DEST/src" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON >&2 || die "cmake configure failed"
cmake --build "$DEST/build" -j "$JOBS" --target llama-server >&2 || die "cmake build failed"
mkdir -p "$DEST/bin"
cp "$DEST/build/bin/llama-server" "$BIN" || die "the build left no build/bin/llama-server"
"$BIN" --version >/dev/null 2>&1 || die "$BIN does not run: try '$BIN --version'"
echo "$LLAMA_SDIST_NAME" > "$STAMP"
rm -rf "$DEST/build"
log "built llama-server from $LLAMA_SDIST_NAME in $(( $(date +%s) - start )) s"
echo "$BIN"
