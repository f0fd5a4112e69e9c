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
