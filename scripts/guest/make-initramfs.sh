#!/usr/bin/env bash
# Builds an initramfs (uncompressed newc cpio: nothing to decompress under TCG) that boots into
# busybox, loads nothing by itself, runs one guest script and powers off. The script's exit code
# comes back on the serial console as the line "GUEST-EXIT <rc>" (run-guest.sh reads it).
#
# Usage: make-initramfs.sh --kernel-dir DIR --out FILE --script GUEST_SCRIPT [options]
#   --kernel-dir DIR   what fetch-kernel.sh printed (modules come from DIR/root)
#   --script FILE      the guest script, run by busybox sh as /guest/run.sh (cwd /guest);
#                      guest-lib.sh beside this file is there as /guest/lib.sh
#   --module NAME      a kernel module to include with everything it depends on (repeatable);
#                      the guest script loads them with modprobe
#   --bin PATH         an executable, copied to /bin/<name> with its shared libraries and ld.so
#                      (repeatable; missing paths are an error)
#   --file SRC:DEST    any other file, copied to DEST (repeatable)
#   --env NAME=VALUE   exported to the guest script (repeatable; written to /guest/env)
set -euo pipefail

kdir="" out="" script=""
modules=() bins=() files=() envs=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --kernel-dir) kdir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --module) modules+=("$2"); shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    *) echo "make-initramfs: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $kdir && -n $out && -n $script ]] || { echo "usage: $0 --kernel-dir DIR --out FILE --script FILE [...]" >&2; exit 2; }
[[ -f $script ]] || { echo "make-initramfs: no guest script $script" >&2; exit 1; }
busybox=/bin/busybox
[[ -x $busybox ]] && ! ldd "$busybox" >/dev/null 2>&1 ||
  { echo "make-initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }

kver=$(cat "$kdir/kver")
kroot=$kdir/root
. "$(dirname "$0")/scratch.sh"
stage=$(scratch_dir sluice-initramfs)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,guest,etc,lib/modules/"$kver"}

cp "$busybox" "$stage/bin/busybox"

# Modules: copied at their own paths, then depmod'ed so busybox modprobe finds them.
for m in "${modules[@]}"; do
  deps=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m") ||
    { echo "make-initramfs: module $m not found in $kroot" >&2; exit 1; }
  while read -r verb path _; do
    [[ $verb == insmod ]] || continue
    rel=${path#"$kroot"}
    mkdir -p "$stage/$(dirname "$rel")"
    cp "$path" "$stage/$rel"
  done <<<"$deps"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [[ -f $kroot/lib/modules/$kver/$f ]] && cp "$kroot/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done
depmod -b "$stage" "$kver"

# Executables with every shared library ldd resolves, at the same paths, plus the loader.
copy_with_libs() {
  local bin=$1 lib
  [[ -x $bin ]] || { echo "make-initramfs: $bin is not an executable" >&2; exit 1; }
  # Without debug info: the initramfs lives in the guest's RAM, and a sanitizer build's
  # debug sections (~150 MB) left too little for fio's shared memory (SIGBUS). Symbols stay,
  # so sanitizer reports still name functions.
  objcopy --strip-debug "$bin" "$stage/bin/$(basename "$bin")" 2>/dev/null || cp -L "$bin" "$stage/bin/$(basename "$bin")"
  # ldd lines: "libx.so => /path (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)".
  for lib in $(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    [[ -e $stage$lib ]] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
}
for b in "${bins[@]}"; do copy_with_libs "$b"; done

for f in "${files[@]}"; do
  src=${f%%:*} dest=${f#*:}
  mkdir -p "$stage$(dirname "$dest")"
  cp -L "$src" "$stage$dest"
done

cp "$script" "$stage/guest/run.sh"
cp "$(dirname "$0")/guest-lib.sh" "$stage/guest/lib.sh"
: >"$stage/guest/env"
for e in "${envs[@]}"; do printf 'export %q\n' "$e" >>"$stage/guest/env"; done

cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "GUEST-START $(cut -d' ' -f1 /proc/uptime) s after kernel start"
. /guest/env
cd /guest
sh /guest/run.sh
rc=$?
echo "GUEST-EXIT $rc"
sync
poweroff -f
INIT
chmod +x "$stage/init"

rm "$stage/.owner"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
