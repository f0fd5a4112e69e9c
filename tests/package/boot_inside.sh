#!/bin/bash
# Runs as huginn-boottest.service inside the booted throwaway container
# (boot_test.sh): installs the .deb, runs huginn-proxy.service for real in
# front of a private backend, reloads it, checks the processes' identities
# and capabilities, stops it. Writes "ok:"/"FAIL:" lines to the console and
# /huginn-test/out/result; the container powers off when this exits.
set -u
out=/huginn-test/out
exec > >(tee "$out/result") 2>&1
failed=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failed=1; }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }
finish() {
  journalctl -b --no-pager -o short-monotonic -u huginn-proxy.service >"$out/journal-unit.txt" 2>&1
  journalctl -b --no-pager -o short-monotonic >"$out/journal-all.txt" 2>&1
  echo "RESULT: $([ "$failed" -eq 0 ] && echo PASS || echo FAIL)"
  exit "$failed"
}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
port=80 backend_port=9100

t=$(now)
if dpkg -i /huginn-test/pkg.deb >"$out/dpkg-i.log" 2>&1; then ok "dpkg -i ($(since "$t"))"; else cat "$out/dpkg-i.log"; fail "dpkg -i"; finish; fi
check "postinst left the unit disabled and stopped" sh -c \
  '[ "$(systemctl is-enabled huginn-proxy)" = disabled ] && ! systemctl -q is-active huginn-proxy'

# A private backend: the project's echo backend (returns the request it got as
# JSON, fingerprint headers included) or, without it, python3's http.server.
if [ -x /huginn-test/echo-backend ]; then
  systemd-run -q --unit=huginn-test-backend /huginn-test/echo-backend --listen 127.0.0.1 --port "$backend_port"
else
  mkdir -p /srv/www && echo "hello from the backend" >/srv/www/hello
  systemd-run -q --unit=huginn-test-backend python3 -m http.server "$backend_port" --bind 127.0.0.1 --directory /srv/www
fi

# Port 80 exercises CAP_NET_BIND_SERVICE; the XDP source starts the helper,
# which exercises bpf(2), CAP_BPF/NET_ADMIN/PERFMON and the bpffs ReadWritePaths.
cat >/etc/huginn-proxy/config.toml <<CFG
workers = 2
user = "huginn"
[listen]
addrs = ["127.0.0.1:$port"]
[[backends]]
address = "127.0.0.1:$backend_port"
[[domains]]
[[domains.routes]]
prefix = "/"
backend = "127.0.0.1:$backend_port"
[fingerprint]
tcp_enabled = true
tcp_source = "auto"
[ebpf]
interfaces = ["lo"]
xdp_mode = "skb"
[timeout]
shutdown_secs = 5
[dbus]
bus = "system"
CFG

# Any system call outside SystemCallFilter= kills the process during this test
# (the shipped unit answers EPERM), so a missing entry cannot hide.
mkdir -p /etc/systemd/system/huginn-proxy.service.d
printf '[Service]\nSystemCallErrorNumber=kill\n' >/etc/systemd/system/huginn-proxy.service.d/boottest.conf
systemctl daemon-reload
# systemd shows the kill action as INT_MAX - 1 (SECCOMP_ERROR_NUMBER_KILL).
errno_prop="$(systemctl show -P SystemCallErrorNumber huginn-proxy)"
check "the unit runs with the kill action for filtered system calls ($errno_prop)" \
  sh -c "[ '$errno_prop' = 2147483646 ] || [ '$errno_prop' = kill ]"

t=$(now)
if systemctl start huginn-proxy; then ok "systemctl start: READY after $(since "$t")"; else fail "systemctl start"; systemctl status --no-pager huginn-proxy; finish; fi
check "is-active" systemctl -q is-active huginn-proxy
st="$(systemctl show -P StatusText huginn-proxy)"
echo "StatusText: $st"
check "StatusText names generation 1" sh -c "echo '$st' | grep -q '^generation 1,'"

get() { curl -sS --max-time 5 -o "$out/body.$1" -w '%{http_code}' "http://127.0.0.1:$port/hello"; }
code="$(get 1)"
check "a request through the proxy: HTTP $code" [ "$code" = 200 ]
if [ -x /huginn-test/echo-backend ]; then
  check "the backend saw the proxy's headers (x-forwarded-for)" grep -qi 'x-forwarded-for' "$out/body.1"
  grep -qi 'x-huginn-net-tcp' "$out/body.1" && ok "the backend got the TCP SYN fingerprint" || echo "note: no x-huginn-net-tcp header"
fi

main="$(systemctl show -P MainPID huginn-proxy)"
# The supervisor's children by program name (comm is cut to 15 characters).
comm_pids() { ps --ppid "$main" -o pid=,comm= | awk -v c="$1" '$2 == c { print $1 }'; }
field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
huginn_uid="$(id -u huginn)"
echo "supervisor $main: Uid $(field "$main" Uid) CapEff $(field "$main" CapEff) CapPrm $(field "$main" CapPrm) CapBnd $(field "$main" CapBnd) NoNewPrivs $(field "$main" NoNewPrivs) Seccomp $(field "$main" Seccomp)"
check "supervisor runs as root with NoNewPrivs and the unit's seccomp filter" \
  sh -c "[ '$(field "$main" Uid)' = 0 ] && [ '$(field "$main" NoNewPrivs)' = 1 ] && [ '$(field "$main" Seccomp)' = 2 ]"
# Bounding = permitted = the unit's CapabilityBoundingSet (SETUID SETGID SETPCAP
# NET_BIND_SERVICE KILL NET_ADMIN BPF PERFMON); effective only NET_BIND_SERVICE
# and KILL (sys::restrict_supervisor_capabilities).
check "supervisor's bounding and permitted sets are the unit's CapabilityBoundingSet (000000c0000015e0)" \
  sh -c "[ '$(field "$main" CapBnd)' = 000000c0000015e0 ] && [ '$(field "$main" CapPrm)' = 000000c0000015e0 ]"
check "supervisor's effective set is NET_BIND_SERVICE and KILL only (0000000000000420)" \
  [ "$(field "$main" CapEff)" = 0000000000000420 ]
workers1="$(comm_pids huginn-worker | sort | tr '\n' ' ')"
check "two workers run ($workers1)" [ "$(echo $workers1 | wc -w)" -eq 2 ]
for w in $workers1; do
  echo "worker $w: Uid $(field "$w" Uid) Gid $(field "$w" Gid) CapEff $(field "$w" CapEff) CapPrm $(field "$w" CapPrm) CapBnd $(field "$w" CapBnd) CapAmb $(field "$w" CapAmb) NoNewPrivs $(field "$w" NoNewPrivs) Seccomp $(field "$w" Seccomp)"
  check "worker $w runs as huginn ($huginn_uid)" [ "$(field "$w" Uid)" = "$huginn_uid" ]
  for k in CapEff CapPrm CapBnd CapInh CapAmb; do
    check "worker $w $k is 0" [ "$(field "$w" $k)" = 0000000000000000 ]
  done
  check "worker $w NoNewPrivs 1, Seccomp 2" sh -c "[ '$(field "$w" NoNewPrivs)' = 1 ] && [ '$(field "$w" Seccomp)' = 2 ]"
done
helper="$(comm_pids huginn-privhelp | head -n1)"
if [ -n "$helper" ]; then
  echo "helper $helper: Uid $(field "$helper" Uid) CapEff $(field "$helper" CapEff) CapPrm $(field "$helper" CapPrm) CapBnd $(field "$helper" CapBnd) Seccomp $(field "$helper" Seccomp)"
  check "helper holds exactly CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON" [ "$(field "$helper" CapEff)" = 000000c000001000 ]
else
  fail "the privileged helper is not running (XDP source)"
fi
check "the helper attached XDP (pinned in the unit's writable bpffs)" sh -c \
  "journalctl --no-pager -u huginn-proxy | grep -q 'XDP SYN capture attached'"
check "the helper pinned its maps under /sys/fs/bpf/huginn" sh -c '[ -n "$(ls -A /sys/fs/bpf/huginn 2>/dev/null)" ]'

huginnctl status --json >"$out/status1.json" 2>&1
echo "huginnctl status --json: $(cut -c1-200 "$out/status1.json")"
check "huginnctl status --json reports generation 1" grep -Eq '"generation": ?1[,}]' "$out/status1.json"
t=$(now)
if systemctl reload huginn-proxy; then ok "systemctl reload ($(since "$t"))"; else fail "systemctl reload"; fi
st2="$(systemctl show -P StatusText huginn-proxy)"
echo "StatusText: $st2"
check "StatusText names generation 2 after the reload" sh -c "echo '$st2' | grep -q '^generation 2,'"
huginnctl status --json >"$out/status2.json" 2>&1
check "huginnctl status --json reports generation 2" grep -Eq '"generation": ?2[,}]' "$out/status2.json"
code="$(get 2)"
check "a request after the reload: HTTP $code" [ "$code" = 200 ]
sleep 1
workers2="$(comm_pids huginn-worker | sort | tr '\n' ' ')"
check "the reload replaced the workers ($workers1-> $workers2)" sh -c "[ -n '$workers2' ] && [ '$workers1' != '$workers2' ]"
for w in $workers2; do
  check "new worker $w runs as huginn with no capabilities" sh -c \
    "[ '$(field "$w" Uid)' = '$huginn_uid' ] && [ '$(field "$w" CapEff)$(field "$w" CapPrm)$(field "$w" CapBnd)' = 000000000000000000000000000000000000000000000000 ]"
done
# D-Bus policy + the handler's own check: a member of huginn-admin (as a
# supplementary group) may reload, another user may not.
useradd -M -s /usr/sbin/nologin huginn-test-admin && usermod -aG huginn-admin huginn-test-admin
useradd -M -s /usr/sbin/nologin huginn-test-other
if runuser -u huginn-test-admin -- huginnctl reload >"$out/reload-admin.txt" 2>&1; then
  ok "a member of huginn-admin reloads: $(cat "$out/reload-admin.txt")"
else
  fail "a member of huginn-admin could not reload: $(cat "$out/reload-admin.txt")"
fi
runuser -u huginn-test-other -- huginnctl reload >"$out/reload-other.txt" 2>&1
rc=$?
check "another user is refused (huginnctl exit $rc: $(head -c 160 "$out/reload-other.txt"))" [ "$rc" -eq 4 ]
check "no restarts of the unit" [ "$(systemctl show -P NRestarts huginn-proxy)" = 0 ]
check "no process was killed by the seccomp filter (SIGSYS) or crashed" sh -c \
  "! journalctl -b --no-pager | grep -E -i 'SIGSYS|signal 31|Bad system call|crash|core-dump|killed by signal'"

t=$(now)
if systemctl stop huginn-proxy; then ok "systemctl stop ($(since "$t"))"; else fail "systemctl stop"; fi
res="$(systemctl show -P Result huginn-proxy)"
echo "after stop: Result=$res"
check "stopped cleanly: Result=success" [ "$res" = success ]
# systemd logs "Deactivated successfully" only for an exit status of 0 (or a
# clean SIGTERM death); "Failed with result" or "code=exited, status=" otherwise.
check "the supervisor exited with status 0" sh -c \
  "journalctl --no-pager -u huginn-proxy | grep -q 'huginn-proxy.service: Deactivated successfully' && \
   journalctl --no-pager -u huginn-proxy | grep -q 'huginn-proxy\\[[0-9]*\\]: info: stopped$' && \
   ! journalctl --no-pager -u huginn-proxy | grep -E -q 'Failed with result|Main process exited, code='"
check "no huginn process is left" sh -c '! pgrep -x huginn-proxy && ! pgrep -x huginn-worker && ! pgrep -x huginn-privhelp'
check "the helper removed its pins on a clean stop" sh -c '[ ! -e /sys/fs/bpf/huginn ] || [ -z "$(ls -A /sys/fs/bpf/huginn)" ]'
finish
