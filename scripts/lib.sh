# Shared helpers for the scripts in this directory. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Each requirement is "NAME:debian-package", where NAME is a command on
# PATH, or "lib:libclang" for the shared library bindgen loads (not the
# C++ API library libclang-cpp, which some images ship on its own).

# have NAME: is the requirement met now?
have() {
    case "$1" in
        lib:libclang) have_libclang ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# bindgen (clang-sys) loads libclang.so or libclang-N.so[.M] from
# LIBCLANG_PATH, llvm-config's libdir, the ld cache or the usual LLVM
# directories. libclang-cpp.so.N does not count.
have_libclang() {
    local dirs=() d
    [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
    command -v llvm-config >/dev/null 2>&1 && dirs+=("$(llvm-config --libdir 2>/dev/null)")
    dirs+=(/usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib /usr/local/lib)
    for d in "${dirs[@]}"; do
        compgen -G "$d/libclang.so*" >/dev/null || compgen -G "$d/libclang-[0-9]*.so*" >/dev/null && return 0
    done
    ldconfig -p 2>/dev/null | grep -Eq '[[:space:]]libclang(-[0-9.]+)?\.so'
}

# need_tools "NAME:debian-package" ... - installs every missing package in
# one apt-get call when running as root, then checks every requirement
# again (an install may remove another package's tools); otherwise names
# the packages and stops.
need_tools() {
    local missing=() pkgs=() item name pkg gone=()
    for item in "$@"; do
        name="${item%:*}"; pkg="${item##*:}"
        if ! have "$name"; then
            missing+=("$name")
            [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing missing packages: ${pkgs[*]} (for ${missing[*]})"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >&2; then
            die "apt-get could not install: ${pkgs[*]}"
        fi
        for item in "$@"; do
            name="${item%:*}"
            have "$name" || gone+=("$name (${item##*:})")
        done
        [ ${#gone[@]} -eq 0 ] || die "still missing after apt-get install ${pkgs[*]}: ${gone[*]}"
    else
        die "missing ${missing[*]}: install the Debian packages ${pkgs[*]} (e.g. sudo apt-get install ${pkgs[*]}) and run again"
    fi
}

# free_mb DIR: megabytes free on the file system that holds DIR (or its
# nearest existing parent).
free_mb() {
    local d="$1"
    while [ ! -e "$d" ]; do d="$(dirname "$d")"; done
    df -Pm "$d" | awk 'NR == 2 { print $4 }'
}

# need_space BUILD_MB SCRATCH_MB - stops early, saying so, when the disk
# cannot hold what the build (in $TARGET) and the tests' scratch images
# (in $TMPDIR) need: a full disk otherwise shows up much later as some
# test's "No space left on device".
need_space() {
    local tmp="${TMPDIR:-/tmp}" build_mb="$1" scratch_mb="$2"
    local at_target at_tmp
    at_target="$(free_mb "$TARGET")"; at_tmp="$(free_mb "$tmp")"
    local fs_target fs_tmp d="$TARGET"
    while [ ! -e "$d" ]; do d="$(dirname "$d")"; done
    fs_target="$(df -P "$d" | awk 'NR == 2 { print $1 }')"; fs_tmp="$(df -P "$tmp" | awk 'NR == 2 { print $1 }')"
    if [ "$fs_target" = "$fs_tmp" ]; then
        [ "$at_target" -ge $((build_mb + scratch_mb)) ] ||
            die "only ${at_target} MB free for the build ($TARGET) and the tests' scratch images ($tmp): they need about $((build_mb + scratch_mb)) MB"
    else
        [ "$at_target" -ge "$build_mb" ] || die "only ${at_target} MB free for the build in $TARGET: it needs about ${build_mb} MB"
        [ "$at_tmp" -ge "$scratch_mb" ] || die "only ${at_tmp} MB free in $tmp for the tests' scratch images: they need about ${scratch_mb} MB"
    fi
}

need_rust() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install stable Rust (rustup, or Debian's cargo) and run again"
}

# rustfmt and clippy, for scripts/test.
need_rust_lints() {
    need_rust
    cargo fmt --version >/dev/null 2>&1 || die "cargo fmt not found: rustup component add rustfmt (or Debian's rustfmt) and run again"
    cargo clippy --version >/dev/null 2>&1 || die "cargo clippy not found: rustup component add clippy (or Debian's rust-clippy) and run again"
}
