# Shared helpers for the scripts in this directory. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# need_tools "cmd:debian-package" ... — installs missing Debian packages
# when running as root (apt-get), otherwise names them and stops.
need_tools() {
    local missing=() pkgs=() item cmd pkg
    for item in "$@"; do
        cmd="${item%%:*}"; pkg="${item#*:}"
        if ! command -v "$cmd" >/dev/null 2>&1; then
            missing+=("$cmd"); pkgs+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing missing packages: ${pkgs[*]} (for ${missing[*]})"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >&2; then
            die "apt-get could not install: ${pkgs[*]}"
        fi
        for cmd in "${missing[@]}"; do
            command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing ${pkgs[*]}"
        done
    else
        die "missing ${missing[*]}: install the Debian packages ${pkgs[*]} (e.g. sudo apt-get install ${pkgs[*]}) and run again"
    fi
}

need_rust() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install stable Rust (rustup, or Debian's cargo) and run again"
}

# libclang for bindgen (netbsd-sys): Debian's libclang-dev.
need_libclang() {
    if ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ldconfig -p 2>/dev/null | grep -q 'libclang'; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing missing package: libclang-dev (for bindgen in netbsd-sys)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libclang-dev; } >&2 \
            || die "apt-get could not install libclang-dev"
    else
        die "libclang not found: install Debian's libclang-dev (needed by bindgen in netbsd-sys) and run again"
    fi
}
