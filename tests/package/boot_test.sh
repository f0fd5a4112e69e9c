#!/bin/bash
# boot_test.sh BUILD_DIR: boots a throwaway Debian 12 container (lib.sh's
# overlay root, systemd-nspawn -b) into huginn-boottest.target, whose only
# service runs boot_inside.sh: install the .deb, start huginn-proxy.service
# with a private backend, request, reload, check uids and capabilities, stop.
# The container powers itself off; this script reads the result.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
build="$1"
pkg_require_root_and_nspawn
deb="$(pkg_find_deb "$build")"
pkg_make_root boot
t="$PKG_ROOT/huginn-test"
cp "$deb" "$t/pkg.deb"
cp "$here/boot_inside.sh" "$t/inside.sh"
[ -x "$build/demo/huginn-echo-backend" ] && cp "$build/demo/huginn-echo-backend" "$t/echo-backend"

cat >"$PKG_ROOT/etc/systemd/system/huginn-boottest.service" <<'UNIT'
[Unit]
Description=huginn-proxy boot test
After=basic.target dbus.socket
Wants=dbus.socket
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash /huginn-test/inside.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=150
UNIT
cat >"$PKG_ROOT/etc/systemd/system/huginn-boottest.target" <<'UNIT'
[Unit]
Description=huginn-proxy boot test target
Requires=basic.target huginn-boottest.service
After=basic.target huginn-boottest.service
AllowIsolate=yes
UNIT

# A private bpffs instance for the helper's pins (not the host's /sys/fs/bpf).
mkdir -p "$PKG_TMP/bpffs"
mount -t bpf bpf "$PKG_TMP/bpffs"
cleanup_bpffs() { umount "$PKG_TMP/bpffs" 2>/dev/null; pkg_cleanup; }
trap cleanup_bpffs EXIT

start=$(date +%s.%N)
# CAP_BPF and CAP_PERFMON are not in nspawn's default capability set, and
# bpf(2) not in its default system call filter; the helper needs all three.
timeout --kill-after=10 170 systemd-nspawn -q --register=no --keep-unit --machine="$PKG_MACHINE" \
  -D "$PKG_ROOT" --private-network --link-journal=no \
  --capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf --bind="$PKG_TMP/bpffs:/sys/fs/bpf" \
  -b systemd.firstboot=off systemd.unit=huginn-boottest.target systemd.show_status=false \
  >"$PKG_TMP/console.log" 2>&1
nspawn_rc=$?
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "container ran for ${elapsed} s (nspawn rc $nspawn_rc)"
res="$t/out/result"
if [ ! -s "$res" ]; then
  echo "FAIL: the boot test wrote no result; console:"
  tail -n 80 "$PKG_TMP/console.log"
  exit 1
fi
cat "$res"
if grep -q '^FAIL' "$res" || ! grep -q '^RESULT: PASS' "$res"; then
  echo "--- huginn-proxy.service journal ---"
  tail -n 60 "$t/out/journal-unit.txt" 2>/dev/null
  echo "FAIL: boot test"
  exit 1
fi
echo "PASS: boot test (${elapsed} s)"
