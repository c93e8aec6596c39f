#!/usr/bin/env bash
# Extract the real LLaMA SentencePiece vocabulary (the one CodeLlama extends) with llama.cpp's
# tokenizer test vectors, for tests/engine/test_real_vocab.py.
#
#   scripts/fetch_llama_vocab.sh [DEST]     DEST defaults to .tools/llama-vocab (git-ignored)
#
# Leaves DEST/ggml-vocab-llama-spm.gguf (vocabulary only, no weights: ~0.7 MB) and its .inp/.out
# test vectors, and prints DEST on stdout. The files come from the llama-cpp-python sdist on PyPI
# (scripts/llama_cpp_sdist.sh), cached in .tools/llama-cpp/ and shared with install_llama_server.sh.
# Exit status: 0 done (or already there), 2 impossible here (PyPI unreachable), 1 anything else.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/llama_cpp_sdist.sh"
DEST="${1:-$HERE/../.tools/llama-vocab}"
CACHE="${LLAMA_CPP_CACHE:-$HERE/../.tools/llama-cpp}"
FILES=(ggml-vocab-llama-spm.gguf ggml-vocab-llama-spm.gguf.inp ggml-vocab-llama-spm.gguf.out)

have_all() {
    local f
    for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || return 1; done
}

mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"
if have_all; then
    echo "$DEST"
    exit 0
fi
tarball="$(llama_sdist "$CACHE")"
members=()
for f in "${FILES[@]}"; do members+=("$LLAMA_VENDOR/models/$f"); done
tar xzf "$tarball" -C "$DEST" --strip-components=4 "${members[@]}" || die "cannot extract ${FILES[*]} from $tarball"
have_all || die "$tarball lacks one of ${FILES[*]}"
log "extracted ${FILES[*]} into $DEST"
echo "$DEST"
