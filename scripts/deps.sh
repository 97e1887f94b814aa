#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs to build, test and benchmark, and makes
# `apt-get source rocksdb` work (RocksDB's own tests are built from Debian's source package:
# tests/integration/rocksdb_source_build.sh). Idempotent: runs apt-get only when something is
# missing. Needs root (or sudo) on a fresh machine.
set -euo pipefail

packages=(
  build-essential dpkg-dev cmake ninja-build pkg-config git
  liburing-dev libaio-dev libisal-dev libblkid-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fio util-linux e2fsprogs python3 python3-matplotlib
  librocksdb-dev rocksdb-tools libfuse3-dev fuse3
  clang libclang-rt-dev
  qemu-system-x86 busybox-static cpio xz-utils kmod pciutils
  libnbd-bin python3-libnbd qemu-utils nbdkit nvme-cli libiscsi-bin open-iscsi
  nettle-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# apt-get source rocksdb needs rocksdb's record in a source index. Debian's images list only
# binary ("deb") entries: if apt has no source index for a Debian archive, add deb-src twins
# of the Debian entries in a file of our own (the system's files stay as they are), then
# apt-get update downloads the index.
need_update=0
deb_src_file=""
deb_src_text=""
if apt-cache showsrc rocksdb 2>/dev/null | grep -q '^Package: rocksdb'; then
  :  # already there
elif ! apt-get indextargets --format '$(SITE)' 'Created-By: Sources' 2>/dev/null | grep -q debian; then
  need_update=1
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 (Debian 12's default): each stanza whose Types has "deb", comments dropped,
    # Types set to deb-src; URIs, Suites, Components, Signed-By as they are.
    deb_src_file=/etc/apt/sources.list.d/sluice-deb-src.sources
    deb_src_text=$(awk 'BEGIN { RS = ""; FS = "\n" }
      {
        binary = 0; out = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          if ($i ~ /^Types:/) {
            if ((" " substr($i, 7) " ") ~ /[[:space:]]deb[[:space:]]/) binary = 1
            out = out "Types: deb-src\n"
          } else out = out $i "\n"
        }
        if (binary) printf "%s\n", out
      }' /etc/apt/sources.list.d/debian.sources)
  elif [ -f /etc/apt/sources.list ]; then
    # One-line format: every "deb [options] URI suite components" line as deb-src.
    deb_src_file=/etc/apt/sources.list.d/sluice-deb-src.list
    deb_src_text=$(sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list)
  fi
  if [ -z "$deb_src_text" ]; then
    echo "deps: no Debian entry found to copy as deb-src; apt-get source rocksdb will not work" >&2
    deb_src_file=""
  fi
else
  need_update=1  # a deb-src entry whose index was never downloaded
fi

if [ ${#missing[@]} -eq 0 ] && [ $need_update -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]} (and a deb-src entry)" >&2; exit 1; }
  SUDO="sudo"
fi
if [ -n "$deb_src_file" ]; then
  echo "deps: adding deb-src entries in $deb_src_file (for apt-get source rocksdb)"
  printf '# Added by sluice scripts/deps.sh: source packages (RocksDB'"'"'s own tests).\n%s\n' \
    "$deb_src_text" | $SUDO tee "$deb_src_file" >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q; then
  # Only the source index was wanted: building and the other tests do not need it.
  [ ${#missing[@]} -eq 0 ] || exit 1
  echo "deps: apt-get update failed; apt-get source rocksdb may not work" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
