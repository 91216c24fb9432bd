# Sourced by scripts/demo and scripts/test: installs what Sentinel needs on
# a Debian machine when it is missing, and nothing when it is all there.

# System packages: SpatiaLite for the node store, PostgreSQL with PostGIS
# for the hub, SQLite headers and pkg-config for building; iproute2 (`ip`)
# for the tests on bad networks (tests/netem: network namespaces).
SENTINEL_APT_PACKAGES="pkg-config libsqlite3-dev libsqlite3-mod-spatialite postgresql-15 postgresql-15-postgis-3 iproute2"

sentinel_apt_install() {
  echo "Installing system packages: $*"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || return 1
}

# Python 3 with venv and pip, for scripts/fuzz-api (schemathesis).
sentinel_ensure_python_venv() {
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    sentinel_apt_install python3 python3-venv python3-pip
  fi
}

# Debian's Chromium and ChromeDriver, for the browser tests of the web
# pages (tests/ui); nothing else of a browser is fetched.
sentinel_ensure_browser() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    sentinel_apt_install chromium chromium-driver
  fi
}

# FUSE for the power-loss tests (lossyfs, tests/powerloss): the kernel's
# /dev/fuse, and Debian's `fuse3` for `fusermount3`, which mounts for a
# user who is not root (as root lossyfs mounts by mount(2) itself). No
# libfuse headers: lossyfs speaks the FUSE protocol in Rust. As root with
# /dev/fuse present (CI), the power-loss tests must run rather than skip:
# SENTINEL_REQUIRE_FUSE=1 makes a skip a failure.
sentinel_ensure_fuse() {
  if ! command -v fusermount3 >/dev/null 2>&1; then
    sentinel_apt_install fuse3 || return 1
  fi
  if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ]; then
    export SENTINEL_REQUIRE_FUSE=1
  fi
}

sentinel_ensure_deps() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed. Install Rust (1.85 or newer) with rustup: https://rustup.rs" >&2
    return 1
  fi
  local missing=""
  for pkg in $SENTINEL_APT_PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $pkg"
    fi
  done
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    sentinel_apt_install $missing || return 1
  fi
}
