#!/bin/bash
# deb_test.sh MODE BUILD_DIR VERSION [MAX_EXPOSURE]
# Installs the .deb built by the package_build fixture into a throwaway
# Debian 12 root (lib.sh) and runs deb_inside.sh MODE there.
#   analyze  systemd-analyze verify (no stderr allowed) and security; the
#            exposure must not exceed MAX_EXPOSURE (recorded in docs/PACKAGING.md)
#   install  contents, users, conffiles, --version, dpkg -r / -P
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mode="$1" build="$2" version="$3" max="${4:-}"
pkg_require_root_and_nspawn
deb="$(pkg_find_deb "$build")"
pkg_make_root "$mode"
cp "$deb" "$PKG_ROOT/huginn-test/pkg.deb"
cp "$here/deb_inside.sh" "$PKG_ROOT/huginn-test/inside.sh"
rc=0
timeout --kill-after=10 120 systemd-nspawn -q --register=no --keep-unit --machine="$PKG_MACHINE" \
  -D "$PKG_ROOT" --private-network --link-journal=no --as-pid2 \
  /bin/bash /huginn-test/inside.sh "$mode" /huginn-test/pkg.deb "$version" || rc=$?
if [ "$mode" = analyze ] && [ "$rc" -eq 0 ]; then
  score="$(cat "$PKG_ROOT/huginn-test/out/score")"
  sed -n '/^→ Overall/p' "$PKG_ROOT/huginn-test/out/security.txt"
  if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    echo "ok: exposure $score <= $max (the recorded threshold)"
  else
    echo "FAIL: exposure $score > $max: the unit's hardening regressed"
    grep -E '^✗' "$PKG_ROOT/huginn-test/out/security.txt" | head -n 40
    rc=1
  fi
fi
[ "$rc" -eq 0 ] && echo "PASS: package $mode" || echo "FAIL: package $mode (rc $rc)"
exit "$rc"
