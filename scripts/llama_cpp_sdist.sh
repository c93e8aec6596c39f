# Sourced by fetch_llama_vocab.sh and install_llama_server.sh: the llama.cpp sources, as vendored in
# the llama-cpp-python sdist on PyPI (pinned), downloaded once into a git-ignored cache.
# It defines the callers' messages, named after the calling script: log(), die() (exit 1) and
# unavailable() (exit 2: impossible on this machine).
#
# Why the sdist: PyPI is the one package index these machines reach, and this sdist carries the whole
# llama.cpp tree (server, convert_hf_to_gguf.py, gguf-py, the vocabulary test files) at a known commit.

LLAMA_CPP_PYTHON_VERSION="0.3.36"
LLAMA_SDIST_NAME="llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
# inside the tarball: the vendored llama.cpp tree
LLAMA_VENDOR="$LLAMA_SDIST_NAME/vendor/llama.cpp"

# llama_sdist CACHE_DIR: prints the path of the sdist tarball, downloading it on first use (76 MB).
llama_sdist() {
    local cache="$1" tarball="$1/$LLAMA_SDIST_NAME.tar.gz" py
    if [ -s "$tarball" ] && gzip -t "$tarball" 2>/dev/null; then
        echo "$tarball"
        return 0
    fi
    py="${PYTHON:-python3}"
    "$py" -m pip --version >/dev/null 2>&1 || unavailable "no pip for $py (set PYTHON to a Python with pip)"
    mkdir -p "$cache" || die "cannot create $cache"
    log "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (sdist, 76 MB) from PyPI into $cache"
    "$py" -m pip download -q --no-binary :all: --no-deps -d "$cache" \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" >&2 \
        || unavailable "'pip download llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION' failed (is PyPI reachable?)"
    [ -s "$tarball" ] || die "pip download did not leave $tarball"
    echo "$tarball"
}

die() { echo "${0##*/}: error: $*" >&2; exit 1; }
unavailable() { echo "${0##*/}: unavailable here: $*" >&2; exit 2; }
log() { echo "${0##*/}: $*" >&2; }
