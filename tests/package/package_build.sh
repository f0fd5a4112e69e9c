#!/bin/bash
# package_build.sh BUILD_DIR VERSION: the CTest fixture that builds the .deb
# from the current build tree (`cpack -G DEB`) into BUILD_DIR/package and
# checks its name and control fields. Needs no root.
set -euo pipefail
build="$1" version="$2"
arch="$(dpkg --print-architecture)"
rm -rf "$build/package"
command -v dpkg-shlibdeps >/dev/null || { echo "FAIL: dpkg-shlibdeps is missing (apt-get install dpkg-dev)"; exit 1; }
(cd "$build" && cpack -G DEB -B "$build/package" --config "$build/CPackConfig.cmake") >"$build/package.log" 2>&1 \
  || { cat "$build/package.log"; echo "FAIL: cpack"; exit 1; }
deb="$build/package/huginn-proxy_${version}_${arch}.deb"
[ -f "$deb" ] || { ls -l "$build/package"; echo "FAIL: $deb not produced"; exit 1; }
dpkg-deb -I "$deb"
depends="$(dpkg-deb -f "$deb" Depends)"
case "$depends" in
  *"libc6 (>="*) ;;
  *) echo "FAIL: Depends ($depends) did not come from dpkg-shlibdeps"; exit 1 ;;
esac
dpkg-deb -I "$deb" conffiles | grep -qx /etc/huginn-proxy/config.toml || { echo "FAIL: no conffiles entry"; exit 1; }
echo "PASS: built $deb ($(stat -c %s "$deb") bytes)"
