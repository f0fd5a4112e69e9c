#!/bin/bash
# Runs inside the throwaway root (systemd-nspawn, not booted) for deb_test.sh.
# MODE analyze: install the .deb, then `systemd-analyze verify` (any stderr is
#               a failure) and `systemd-analyze security --offline=yes`.
# MODE install: install, check contents, users, conffiles; remove; purge.
# Prints "ok: ..." / "FAIL: ..." lines; exits non-zero on any failure.
set -u
mode="$1" deb="$2" version="$3"
out=/huginn-test/out
failed=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failed=1; }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
if ! dpkg -i "$deb" >"$out/dpkg-i.log" 2>&1; then
  cat "$out/dpkg-i.log"
  fail "dpkg -i $deb"
  exit 1
fi
ok "dpkg -i $(basename "$deb")"

unit=/lib/systemd/system/huginn-proxy.service

if [ "$mode" = analyze ]; then
  # verify needs the binaries and man pages the unit names at their paths:
  # they are, the package is installed.
  systemd-analyze verify "$unit" >"$out/verify.out" 2>"$out/verify.err"
  rc=$?
  if [ "$rc" -eq 0 ] && [ ! -s "$out/verify.err" ]; then
    ok "systemd-analyze verify: rc 0, no output on stderr"
  else
    fail "systemd-analyze verify: rc $rc, stderr:"; cat "$out/verify.err"
  fi
  systemd-analyze security --offline=yes --no-pager "$unit" >"$out/security.txt" 2>&1
  score="$(sed -n 's/.*Overall exposure level for huginn-proxy.service: \([0-9.]*\).*/\1/p' "$out/security.txt")"
  if [ -n "$score" ]; then
    echo "$score" >"$out/score"
    ok "systemd-analyze security --offline=yes: exposure $score"
  else
    fail "no exposure level in systemd-analyze security's output:"; cat "$out/security.txt"
  fi
  exit "$failed"
fi

# --- MODE install ---------------------------------------------------------
v="$(/usr/sbin/huginn-proxy --version 2>&1)"
check "huginn-proxy --version prints '$v'" [ "$v" = "huginn-proxy $version" ]
cv="$(/usr/bin/huginnctl version 2>&1)"
check "huginnctl version prints '$cv'" [ "$cv" = "huginnctl $version" ]
c="$(/usr/sbin/huginn-proxy --check-config 2>&1)"
check "the installed /etc/huginn-proxy/config.toml passes --check-config ($c)" [ "$c" = "config OK" ]
check "user huginn exists (systemd-sysusers)" sh -c "getent passwd huginn >/dev/null"
check "group huginn-admin exists" sh -c "getent group huginn-admin >/dev/null"
check "user huginn has no login shell" sh -c 'getent passwd huginn | grep -q ":/usr/sbin/nologin$"'

files="/usr/sbin/huginn-proxy /usr/bin/huginnctl
/usr/libexec/huginn-proxy/huginn-worker /usr/libexec/huginn-proxy/huginn-privhelper
$unit /usr/share/dbus-1/system.d/org.huginn.Proxy1.conf /usr/lib/sysusers.d/huginn-proxy.conf
/usr/share/man/man8/huginn-proxy.8 /usr/share/man/man8/huginnctl.8 /usr/share/man/man5/huginn-proxy.toml.5
/etc/huginn-proxy/config.toml"
dpkg -L huginn-proxy >"$out/dpkg-L.txt"
for f in $files; do
  check "dpkg -L lists $f and it is installed" sh -c "grep -qx '$f' '$out/dpkg-L.txt' && [ -e '$f' ]"
done
for f in /usr/sbin/huginn-proxy /usr/bin/huginnctl /usr/libexec/huginn-proxy/huginn-worker /usr/libexec/huginn-proxy/huginn-privhelper; do
  check "$f is executable, root-owned, not setuid" sh -c "[ -x '$f' ] && [ \"\$(stat -c %U:%a '$f')\" = root:755 ]"
done
check "config.toml is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' huginn-proxy | grep -q '/etc/huginn-proxy/config.toml'"
check "Depends comes from shlibdeps (libc6, libssl3, libevent)" sh -c \
  "dpkg-query -W -f='\${Depends}' huginn-proxy | grep -q 'libc6 (>=' && dpkg-query -W -f='\${Depends}' huginn-proxy | grep -q libssl3 && dpkg-query -W -f='\${Depends}' huginn-proxy | grep -q libevent"
check "the unit is not enabled by the package" sh -c '[ "$(systemctl is-enabled huginn-proxy.service 2>/dev/null)" = disabled ]'
dpkg-query -W -f='${Depends}\n' huginn-proxy >"$out/depends.txt"

if dpkg -r huginn-proxy >"$out/dpkg-r.log" 2>&1; then ok "dpkg -r"; else cat "$out/dpkg-r.log"; fail "dpkg -r"; fi
for f in $files; do
  [ "$f" = /etc/huginn-proxy/config.toml ] && continue
  check "dpkg -r removed $f" [ ! -e "$f" ]
done
check "dpkg -r keeps the conffile" [ -e /etc/huginn-proxy/config.toml ]
if dpkg -P huginn-proxy >"$out/dpkg-P.log" 2>&1; then ok "dpkg -P"; else cat "$out/dpkg-P.log"; fail "dpkg -P"; fi
check "dpkg -P removed /etc/huginn-proxy" [ ! -e /etc/huginn-proxy ]
check "purge keeps the user huginn (documented)" sh -c "getent passwd huginn >/dev/null"
exit "$failed"
