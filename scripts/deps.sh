#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs to build, test and benchmark. Idempotent:
# runs apt-get only when something is missing. Needs root (or sudo) on a fresh machine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  liburing-dev libaio-dev libisal-dev libblkid-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fio util-linux e2fsprogs python3 python3-matplotlib
  librocksdb-dev rocksdb-tools libfuse3-dev fuse3
  clang libclang-rt-dev
  qemu-system-x86 busybox-static cpio xz-utils kmod pciutils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
