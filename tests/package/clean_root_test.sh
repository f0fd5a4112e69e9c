#!/bin/bash
# clean_root_test.sh BUILD_DIR VERSION
# Installs the .deb built by the package_build fixture with
# `apt-get install ./huginn-proxy_*.deb` into a clean, minimal Debian 12 root
# (not an overlay of the host, where every dependency is already installed),
# so Depends must be resolved from the mirror; then runs clean_root_inside.sh
# there (contents, --version, --check-config, dpkg -r, dpkg -P).
# The root is `mmdebstrap --variant=minbase bookworm` from the mirror of the
# host's /etc/apt/sources.list.d/debian.sources, cached as
# BUILD_DIR/package-test/bookworm-minbase.tar (built when missing; delete it
# to rebuild); the packages apt downloads are kept in
# BUILD_DIR/package-test/apt-archives, so a rerun downloads nothing.
# Skips (77) when not root, when mmdebstrap or systemd-nspawn is missing, or
# when the mirror is unreachable.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
build="$1" version="$2"
start=$SECONDS

[ "$(id -u)" -eq 0 ] || pkg_skip "needs root (mmdebstrap --mode=root, a tmpfs, systemd-nspawn)"
command -v mmdebstrap >/dev/null 2>&1 || pkg_skip "mmdebstrap is missing (scripts/install-deps.sh installs it)"
command -v systemd-nspawn >/dev/null 2>&1 || pkg_skip "systemd-nspawn is missing (apt-get install systemd-container)"
pkg_require_debian_mirror
deb="$(pkg_find_deb "$build")"

cache="$build/package-test"
tarball="$cache/bookworm-minbase.tar"
archives="$cache/apt-archives"
mkdir -p "$cache" "$archives"
exec 9>"$cache/lock"
flock 9  # one run per build directory at a time (cache and archives)

build_cache() {
  local t0=$SECONDS
  echo "building $tarball: mmdebstrap --variant=minbase bookworm from $PKG_DEBIAN_SOURCES"
  rm -f "$tarball.partial"
  # --skip=cleanup/apt/lists keeps the package lists: apt-get update in the
  # test then only revalidates them.
  if ! timeout --kill-after=10 600 mmdebstrap --variant=minbase --mode=root --format=tar \
      --skip=cleanup/apt/lists bookworm "$tarball.partial" "$PKG_DEBIAN_SOURCES" >"$cache/mmdebstrap.log" 2>&1; then
    tail -n 40 "$cache/mmdebstrap.log"
    rm -f "$tarball.partial"
    echo "FAIL: mmdebstrap (log: $cache/mmdebstrap.log)"
    exit 1
  fi
  mv "$tarball.partial" "$tarball"
  echo "ok: built the clean-root cache in $((SECONDS - t0)) s ($(du -m "$tarball" | cut -f1) MB)"
}

[ -f "$tarball" ] || build_cache
if ! pkg_make_root_from_tar cleanroot "$tarball"; then
  echo "the cached root does not unpack; rebuilding it"
  pkg_cleanup
  build_cache
  pkg_make_root_from_tar cleanroot "$tarball" || { echo "FAIL: $tarball does not unpack"; exit 1; }
fi
echo "ok: clean bookworm minbase root unpacked ($((SECONDS - start)) s so far)"
cp "$deb" "$PKG_ROOT/huginn-test/"
cp "$here/lib.sh" "$PKG_ROOT/huginn-test/lib.sh"
cp "$here/clean_root_inside.sh" "$PKG_ROOT/huginn-test/inside.sh"

# Not booted, the host's network (apt needs the mirror), its resolv.conf;
# nspawn provides /dev, /proc, /sys and unmounts them with its namespace.
rc=0
timeout --kill-after=10 600 systemd-nspawn -q --register=no --keep-unit --machine="$PKG_MACHINE" \
  -D "$PKG_ROOT" --link-journal=no --as-pid2 --resolv-conf=copy-host \
  --bind="$archives:/var/cache/apt/archives" \
  /bin/bash /huginn-test/inside.sh "$(basename "$deb")" "$version" || rc=$?
[ "$rc" -eq 0 ] && echo "PASS: package clean root ($((SECONDS - start)) s)" \
                || echo "FAIL: package clean root (rc $rc, $((SECONDS - start)) s)"
exit "$rc"
