# Sourced by the editor installers (install_neovim.sh, install_emacs_lsp.sh): a private apt state
# on the machine's own Debian mirror, for downloading packages of newer suites without touching the
# system's apt configuration. The caller defines log() and unavailable() (exit 2: impossible here).

# First Debian archive URI (not debian-security) from one-line .list files or deb822 .sources files.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    done
}

# alt_apt_setup DEST "SUITE..." "REQUIRED_SUITE...": sources.list, lists and cache under DEST/apt-alt,
# then `apt-get update`; sets APT (options for apt-get) and MIRROR. Exits 2 when a required suite
# cannot be reached. apt-get update exits 0 when indexes fail to download (it only warns), so the
# downloaded index files are looked for instead.
alt_apt_setup() {
    local dest="$1" suites="$2" required="$3" suite update_log
    MIRROR="$(debian_mirror | grep -E '/debian/?$' | grep -v security | head -n1 || true)"
    [ -n "$MIRROR" ] || unavailable "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/"
    MIRROR="${MIRROR%/}"
    local alt="$dest/apt-alt"
    mkdir -p "$alt/lists/partial" "$alt/cache/archives/partial" "$dest/debs"
    : > "$alt/sources.list"
    for suite in $suites; do
        echo "deb $MIRROR $suite main" >> "$alt/sources.list"
    done
    APT=(-o "Dir::Etc::sourcelist=$alt/sources.list" -o "Dir::Etc::sourceparts=-"
         -o "Dir::State::Lists=$alt/lists" -o "Dir::Cache=$alt/cache" -o "APT::Sandbox::User=root" -q)
    log "apt-get update ($suites from $MIRROR, state in $alt)"
    update_log="$(apt-get "${APT[@]}" update 2>&1)" || true
    echo "$update_log" >&2
    for suite in $required; do
        compgen -G "$alt/lists/*_dists_${suite}_main_binary-*_Packages*" >/dev/null \
            || unavailable "cannot reach Debian $suite at $MIRROR: $(grep -m1 -E '^(E|W|Err)' <<<"$update_log" || echo 'apt-get update failed')"
    done
}

# alt_download PKG_SPEC...: into the current folder; the first spec apt can fetch wins, and an
# earlier download of the same package (and version, if pinned) is reused.
alt_download() {
    local spec pkg version
    for spec in "$@"; do
        pkg="${spec%%[=/]*}"
        version="*"
        [ "$spec" = "${spec#*=}" ] || version="${spec#*=}"
        version="${version//:/%3a}"  # how apt writes an epoch in a file name
        if compgen -G "${pkg}_${version}_*.deb" >/dev/null; then return 0; fi
        if apt-get "${APT[@]}" download "$spec" >&2 2>/dev/null; then return 0; fi
    done
    return 1
}
