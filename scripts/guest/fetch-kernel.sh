#!/usr/bin/env bash
# Fetches the Debian kernel the running Debian 12 would install (linux-image-amd64's
# dependency), unpacks it with its modules into a cache and extracts the uncompressed ELF
# vmlinux from the bzImage: QEMU boots that directly through PVH, which saves the ~3 s the
# bzImage spends decompressing itself under TCG.
#
# Usage: fetch-kernel.sh            prints the cache directory of that kernel:
#          DIR/vmlinux               the ELF kernel for `qemu -kernel`
#          DIR/root/lib/modules/KVER its modules, depmod'ed
#          DIR/kver                  KVER
# Quick and offline once cached. Environment:
#   SLUICE_GUEST_CACHE       cache root (default ~/.cache/sluice-guest)
#   SLUICE_GUEST_KERNEL_PKG  a linux-image-* package name instead of the one apt would pick
# Exit 0 on success, 77 when the package cannot be downloaded (no network or no apt lists and
# nothing cached), 1 else (including a package name apt does not know).
set -euo pipefail

cache=${SLUICE_GUEST_CACHE:-$HOME/.cache/sluice-guest}
mkdir -p "$cache"
# One fetch at a time per cache: concurrent test runs wait for the first one.
exec 9>"$cache/.lock"
flock -w 600 9 || { echo "fetch-kernel: timed out waiting for $cache/.lock" >&2; exit 1; }

# The newest cached kernel: the fallback when apt cannot tell us what it would install.
newest_cached() {
  local d best=""
  for d in "$cache"/linux-image-*/; do
    [[ -f $d/vmlinux && -f $d/kver ]] && best=${d%/}
  done
  echo "$best"
}

pkg=${SLUICE_GUEST_KERNEL_PKG:-}
if [[ -z $pkg ]]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
fi
if [[ -z $pkg ]]; then
  cached=$(newest_cached)
  if [[ -n $cached ]]; then echo "$cached"; exit 0; fi
  echo "fetch-kernel: apt-cache does not name a linux-image package (no apt lists?) and nothing is cached" >&2
  exit 77
fi

dir=$cache/$pkg
if [[ -f $dir/vmlinux && -f $dir/kver && -f $dir/root/lib/modules/$(cat "$dir/kver")/modules.dep ]]; then
  echo "$dir"
  exit 0
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
chmod 755 "$work"  # apt-get download hands the file to its _apt user
trap 'rm -rf "$work"' EXIT
echo "fetch-kernel: downloading $pkg" >&2
if ! (cd "$work" && apt-get download "$pkg" >"$work/apt.log" 2>&1); then
  cached=$(newest_cached)
  if [[ -n $cached ]]; then
    echo "fetch-kernel: download of $pkg failed, using the cached $(basename "$cached")" >&2
    echo "$cached"; exit 0
  fi
  echo "fetch-kernel: apt-get download $pkg failed: $(tail -2 "$work/apt.log" | tr '\n' ' ')" >&2
  # A name apt does not know is a mistake to fix, not a missing network.
  if grep -qE "Unable to locate|Can't select|has no installation candidate" "$work/apt.log"; then exit 1; fi
  exit 77
fi
mkdir "$work/out"
dpkg -x "$work"/"$pkg"_*.deb "$work/out/root"
kver=$(ls "$work/out/root/lib/modules")
[[ $(wc -w <<<"$kver") -eq 1 ]] || { echo "fetch-kernel: expected one module tree in $pkg, got: $kver" >&2; exit 1; }
depmod -b "$work/out/root" "$kver"
echo "$kver" >"$work/out/kver"

# The bzImage carries the kernel as an xz stream (CONFIG_KERNEL_XZ): find its magic and unpack
# the first stream that yields an ELF file.
bz=$work/out/root/boot/vmlinuz-$kver
found=""
for off in $(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$bz" | cut -d: -f1); do
  # (Process substitution, not a pipe: tail dies of SIGPIPE when xz stops at the stream's end.)
  if xz -dc --single-stream < <(tail -c +$((off + 1)) "$bz") >"$work/out/vmlinux" 2>/dev/null &&
     [[ $(head -c 4 "$work/out/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
    found=$off; break
  fi
done
[[ -n $found ]] || { echo "fetch-kernel: no xz-compressed ELF kernel inside $bz" >&2; exit 1; }

rm -rf "$dir"
mv "$work/out" "$dir"
echo "fetch-kernel: cached $pkg ($kver) in $dir" >&2
echo "$dir"
