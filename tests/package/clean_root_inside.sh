#!/bin/bash
# Runs inside the clean Debian 12 root (systemd-nspawn, not booted, host
# network) for clean_root_test.sh: `apt-get install ./huginn-proxy_*.deb`
# resolves Depends from the mirror on a minbase system that has few of them,
# then the installed package is checked, removed and purged.
# clean_root_inside.sh DEB_BASENAME VERSION (the .deb is in /huginn-test).
# shellcheck source=lib.sh
source /huginn-test/lib.sh
set +e +o pipefail
deb="$1" version="$2"
out=/huginn-test/out
cd /huginn-test || exit 1
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
apt_opts=(-o Acquire::Retries=3 -o DPkg::Lock::Timeout=600)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- the root is clean ------------------------------------------------------
pkg_check "the clean root has no huginn-proxy" sh -c '! dpkg-query -W huginn-proxy >/dev/null 2>&1'
pkg_check "the clean root has no user huginn" sh -c '! getent passwd huginn >/dev/null'
# Every package named in Depends (all alternatives); those missing before
# the install must come from the mirror.
names="$(dpkg-deb -f "./$deb" Depends | sed 's/[,|]/\n/g' | sed 's/(.*)//; s/[[:space:]]//g; /^$/d' | sort -u)"
absent=""
for n in $names; do installed "$n" || absent="$absent $n"; done
if [ -n "$absent" ]; then
  pkg_ok "the clean root lacks $(echo "$absent" | wc -w) of the $(echo "$names" | wc -w) packages in Depends:$absent"
else
  pkg_fail "the clean root already has every package in Depends: it proves nothing"
fi
dpkg-query -W -f='${Package}\n' | sort >"$out/before.txt"

# --- apt resolves Depends from the mirror -----------------------------------
if apt-get "${apt_opts[@]}" update -qq >"$out/apt-update.log" 2>&1; then
  pkg_ok "apt-get update"
else
  cat "$out/apt-update.log"; pkg_fail "apt-get update"; exit 1
fi
if apt-get "${apt_opts[@]}" install -y --no-install-recommends "./$deb" >"$out/apt-install.log" 2>&1; then
  dpkg-query -W -f='${Package}\n' | sort >"$out/after.txt"
  pkg_ok "apt-get install --no-install-recommends ./$deb installed: $(comm -13 "$out/before.txt" "$out/after.txt" | paste -sd' ')"
else
  cat "$out/apt-install.log"; pkg_fail "apt-get install ./$deb"; exit 1
fi
pkg_check "huginn-proxy is installed and configured" installed huginn-proxy
# Packages in an alternative ("systemd | adduser") may stay absent.
alternatives=" $(dpkg-deb -f "./$deb" Depends | tr ',' '\n' | grep '|' | tr '|' '\n' | sed 's/(.*)//; s/[[:space:]]//g' | tr '\n' ' ') "
still=""
for n in $absent; do
  case "$alternatives" in *" $n "*) continue ;; esac
  installed "$n" || still="$still $n"
done
pkg_check "every missing package of Depends is installed now${still:+ (not:$still)}" [ -z "$still" ]
pkg_check "apt-get check: no broken dependencies" sh -c 'apt-get check >/dev/null 2>&1'
for f in /usr/sbin/huginn-proxy /usr/bin/huginnctl /usr/libexec/huginn-proxy/huginn-worker /usr/libexec/huginn-proxy/huginn-privhelper; do
  missing="$(ldd "$f" 2>&1 | awk '/not found/ { print $1 }' | paste -sd' ')"
  pkg_check "every shared library of $f resolves${missing:+ (not found: $missing)}" [ -z "$missing" ]
done

# --- the installed package works --------------------------------------------
v="$(/usr/sbin/huginn-proxy --version 2>&1)"
pkg_check "huginn-proxy --version prints '$v'" [ "$v" = "huginn-proxy $version" ]
cv="$(/usr/bin/huginnctl version 2>&1)"
pkg_check "huginnctl version prints '$cv'" [ "$cv" = "huginnctl $version" ]
c="$(/usr/sbin/huginn-proxy --check-config --config /etc/huginn-proxy/config.toml 2>&1)"
pkg_check "huginn-proxy --check-config --config /etc/huginn-proxy/config.toml ($c)" [ "$c" = "config OK" ]
how="adduser fallback: no systemd-sysusers in the root"
[ -x /usr/bin/systemd-sysusers ] && how="systemd-sysusers"
pkg_check "user huginn exists (postinst, $how)" sh -c "getent passwd huginn >/dev/null"
pkg_check "user huginn has no login shell" sh -c 'getent passwd huginn | grep -q ":/usr/sbin/nologin$"'
pkg_check "group huginn-admin exists (postinst)" sh -c "getent group huginn-admin >/dev/null"

files="/usr/sbin/huginn-proxy /usr/bin/huginnctl
/usr/libexec/huginn-proxy/huginn-worker /usr/libexec/huginn-proxy/huginn-privhelper
/lib/systemd/system/huginn-proxy.service /usr/share/dbus-1/system.d/org.huginn.Proxy1.conf
/usr/lib/sysusers.d/huginn-proxy.conf
/usr/share/man/man8/huginn-proxy.8 /usr/share/man/man8/huginnctl.8 /usr/share/man/man5/huginn-proxy.toml.5"
conf=/etc/huginn-proxy/config.toml
dpkg -L huginn-proxy >"$out/dpkg-L.txt"
for f in $files $conf; do
  pkg_check "dpkg -L lists $f and it is installed" sh -c "grep -qx '$f' '$out/dpkg-L.txt' && [ -e '$f' ]"
done

# --- dpkg -r removes them, the conffile stays until purge -------------------
if dpkg -r huginn-proxy >"$out/dpkg-r.log" 2>&1; then pkg_ok "dpkg -r huginn-proxy"; else cat "$out/dpkg-r.log"; pkg_fail "dpkg -r huginn-proxy"; fi
for f in $files; do
  pkg_check "dpkg -r removed $f" [ ! -e "$f" ]
done
pkg_check "dpkg -r keeps the conffile $conf" [ -e "$conf" ]
if dpkg -P huginn-proxy >"$out/dpkg-P.log" 2>&1; then pkg_ok "dpkg -P huginn-proxy"; else cat "$out/dpkg-P.log"; pkg_fail "dpkg -P huginn-proxy"; fi
pkg_check "dpkg -P removed $conf" [ ! -e "$conf" ]
exit "$PKG_FAILED"
