# Shared helpers of the package tests (sourced, bash). A throwaway Debian 12
# root is an overlay: the host's root file system as the read-only lower layer
# and a tmpfs as the upper one, so the host's installed packages are there
# (dependencies resolve as on a real system) but nothing written inside
# (dpkg database, /etc/passwd, the installed files) reaches the host.
# systemd-nspawn refuses `-D /` itself without --volatile, and --volatile=yes
# leaves /etc and /var empty (no dpkg database), hence this overlay
# (../shared/reference/platform-facts.md §6). Nothing goes to /var/lib/machines.

set -euo pipefail

pkg_skip() {  # CTest SKIP_RETURN_CODE is 77
  echo "SKIP: $*"
  exit 77
}

pkg_require_root_and_nspawn() {
  [ "$(id -u)" -eq 0 ] || pkg_skip "needs root (mounts an overlay root and runs systemd-nspawn)"
  command -v systemd-nspawn >/dev/null 2>&1 || pkg_skip "systemd-nspawn is missing (apt-get install systemd-container)"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || pkg_skip "the kernel has no overlayfs"
}

# pkg_find_deb BUILD_DIR: the .deb the package_build fixture made.
pkg_find_deb() {
  local deb
  deb="$(ls -1t "$1"/package/huginn-proxy_*_*.deb 2>/dev/null | head -n1 || true)"
  [ -n "$deb" ] || { echo "FAIL: no .deb in $1/package (the package_build fixture failed?)"; exit 1; }
  echo "$deb"
}

PKG_TMP=""
PKG_ROOT=""
PKG_MACHINE=""

pkg_cleanup() {
  set +e
  if [ -n "$PKG_MACHINE" ]; then
    # nspawn runs under `timeout`, and its container dies with it (PDEATHSIG).
    rmdir "/run/systemd/nspawn/propagate/$PKG_MACHINE" 2>/dev/null
  fi
  if [ -n "$PKG_ROOT" ] && mountpoint -q "$PKG_ROOT"; then
    umount "$PKG_ROOT" 2>/dev/null || umount -l "$PKG_ROOT"
  fi
  if [ -n "$PKG_TMP" ] && mountpoint -q "$PKG_TMP"; then
    umount "$PKG_TMP" 2>/dev/null || umount -l "$PKG_TMP"
  fi
  [ -n "$PKG_TMP" ] && rmdir "$PKG_TMP" 2>/dev/null
  return 0
}

# pkg_make_root NAME: sets PKG_TMP, PKG_ROOT (the merged root), PKG_MACHINE
# (unique machine name) and installs the cleanup trap.
pkg_make_root() {
  PKG_MACHINE="huginn-$1-$$-$RANDOM"
  PKG_TMP="$(mktemp -d /tmp/huginn-pkgtest.XXXXXX)"
  trap pkg_cleanup EXIT
  mount -t tmpfs -o mode=0755,size=1g tmpfs "$PKG_TMP"
  mkdir -p "$PKG_TMP/upper" "$PKG_TMP/work" "$PKG_TMP/root"
  PKG_ROOT="$PKG_TMP/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$PKG_TMP/upper,workdir=$PKG_TMP/work" "$PKG_ROOT"
  # Files the test puts into the root.
  mkdir -p "$PKG_ROOT/huginn-test/out"
  # A root that looks freshly installed for this package: no leftovers of a
  # huginn-proxy the host itself might have.
  rm -rf "$PKG_ROOT/etc/huginn-proxy" "$PKG_ROOT/run/huginn-proxy"
}

# pkg_nspawn ARGS...: systemd-nspawn on the overlay root, private network,
# not registered with machined (PID 1 of the host is not systemd).
pkg_nspawn() {
  systemd-nspawn -q --register=no --keep-unit --machine="$PKG_MACHINE" -D "$PKG_ROOT" \
    --private-network "$@"
}

# --- Clean-root helpers (clean_root_test.sh) --------------------------------
# There the root is not an overlay of the host but a minimal Debian 12 tree
# (mmdebstrap --variant=minbase, cached as a tarball in the build directory)
# unpacked on a tmpfs; pkg_cleanup removes it like the overlay.

# The deb822 file the host's apt uses; the clean root comes from its mirror.
PKG_DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources

# pkg_require_debian_mirror: skips unless PKG_DEBIAN_SOURCES exists and its
# first mirror serves bookworm's InRelease.
pkg_require_debian_mirror() {
  [ -r "$PKG_DEBIAN_SOURCES" ] || pkg_skip "$PKG_DEBIAN_SOURCES is missing (the mirror of the clean root comes from there)"
  local uri
  uri="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$PKG_DEBIAN_SOURCES" | head -n1)"
  [ -n "$uri" ] || pkg_skip "no URIs: line in $PKG_DEBIAN_SOURCES"
  curl -fsS --max-time 15 -o /dev/null "$uri/dists/bookworm/InRelease" 2>/dev/null \
    || pkg_skip "the Debian mirror $uri (from $PKG_DEBIAN_SOURCES) is unreachable"
}

# pkg_make_root_from_tar NAME TARBALL: sets PKG_TMP, PKG_ROOT, PKG_MACHINE as
# pkg_make_root does and installs the same cleanup trap, but PKG_ROOT is
# TARBALL unpacked on a tmpfs. Returns non-zero if the tarball does not unpack.
pkg_make_root_from_tar() {
  PKG_MACHINE="huginn-$1-$$-$RANDOM"
  PKG_TMP="$(mktemp -d /tmp/huginn-pkgtest.XXXXXX)"
  trap pkg_cleanup EXIT
  mount -t tmpfs -o mode=0755,size=2g tmpfs "$PKG_TMP"
  PKG_ROOT="$PKG_TMP/root"
  mkdir -p "$PKG_ROOT"
  tar -xf "$2" -C "$PKG_ROOT" --numeric-owner || return 1
  mkdir -p "$PKG_ROOT/huginn-test/out"
}

# ok:/FAIL: lines for scripts that run inside a root (they source a copy of
# this file, then `set +e`); PKG_FAILED is their exit status.
PKG_FAILED=0
pkg_ok() { echo "ok: $*"; }
# shellcheck disable=SC2034  # PKG_FAILED is read by the sourcing script
pkg_fail() { echo "FAIL: $*"; PKG_FAILED=1; }
pkg_check() { local what="$1"; shift; if "$@"; then pkg_ok "$what"; else pkg_fail "$what"; fi; }
