#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing huginn-proxy needs.
# Idempotent: packages already present are left alone. Run as root (or via sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(
  # toolchain
  build-essential cmake pkg-config clang llvm lld clang-format
  libclang-rt-14-dev
  # libraries
  libevent-dev libssl-dev libnghttp2-dev node-llhttp libbpf-dev bpftool libelf-dev
  zlib1g-dev libcap-dev libjsoncpp-dev libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev
  libtomlplusplus-dev libpcap-dev libseccomp-dev linux-libc-dev
  # tests
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  curl nghttp2-client openssl iproute2 tcpdump p0f python3 python3-h2 python3-prometheus-client wrk strace
  dbus dbus-daemon mandoc
  # packaging: cpack DEB with dpkg-shlibdeps (needs `file`), nspawn for the boot test,
  # mmdebstrap for the clean-root install test
  dpkg-dev file systemd-container procps man-db mmdebstrap
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present"
fi
