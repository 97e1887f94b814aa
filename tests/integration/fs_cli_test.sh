#!/usr/bin/env bash
# End-to-end test of `sluice mkfs`, `sluice fsck` and `sluice fs` on a file image: format,
# refuse to format over a store, another filesystem or data (unless --force) leaving it
# unchanged, copy files in and out byte for byte, list, stat, cat, mkdir, rm (-r), df; clear
# errors for a missing path, an unformatted device and a bad cp; fsck is clean after all of it
# and fails, listing the problem, on an image with a damaged blobstore (one zeroed super block
# copy: named with its repair, which then makes it clean; both copies zeroed: the tools name
# the repair, which rebuilds the super block from the checkpoint, and the files read back the
# same); fsck --json answers in JSON for an image it cannot open; `blob rm` refuses a blob
# SluiceFS or an lvol store owns, and after `blob rm --force` fsck reports it missing.
# Usage: fs_cli_test.sh path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp fs_cli

IMG=$TMP/fs.img
truncate -s 128M "$IMG"

# ---- format --------------------------------------------------------------------------------
if expect "fs ls unformatted" 1 fs ls "$IMG" && err_has "not a SluiceFS image"; then pass "an unformatted device is refused"; fi
if expect "mkfs" 0 mkfs "$IMG" && out_has "formatted"; then pass "mkfs DEVICE"; fi
if expect "mkfs again" 1 mkfs "$IMG" && err_has "already holds a SluiceFS image" && err_has "--force"; then
  pass "mkfs refuses an existing SluiceFS"
fi
if expect "mkfs --force" 0 mkfs "uring:$IMG" --force --cluster-size 256k; then pass "mkfs --force with a cluster size"; fi
if expect "mkfs bad cluster" 2 mkfs "$IMG" --force --cluster-size 1000; then pass "mkfs rejects a bad cluster size"; fi
expect "fsck empty" 0 fsck "$IMG" && out_has "clean" && pass "fsck: a fresh image is clean"

# Another filesystem, an lvol store, data: each named, none touched without --force.
refused_unchanged() {  # NAME IMAGE EXPECTED-TEXT
  local sum; sum=$(md5sum <"$2")
  if expect "$1" 1 mkfs "$2" && err_has "$3" && err_has "--force" && [[ $(md5sum <"$2") == "$sum" ]]; then
    pass "mkfs refuses $1, naming it, and leaves it unchanged"
  elif [[ $(md5sum <"$2") != "$sum" ]]; then fail "mkfs over $1 changed the device"; fi
}
truncate -s 64M "$TMP/ext4.img"
if PATH=$PATH:/sbin:/usr/sbin mkfs.ext4 -q -F -L keepme "$TMP/ext4.img" >/dev/null 2>&1; then
  refused_unchanged "an ext4 filesystem" "$TMP/ext4.img" "an ext4 filesystem (label 'keepme'"
  if expect "mkfs --force over ext4" 0 mkfs "$TMP/ext4.img" --force; then pass "mkfs --force formats over ext4"; fi
else
  echo "skip mkfs over ext4: no mkfs.ext4"
fi
truncate -s 64M "$TMP/lvs.img"
run lvol create-store "$TMP/lvs.img" keep && run lvol create -d "$TMP/lvs.img" vol 8M
refused_unchanged "an lvol store" "$TMP/lvs.img" "lvol store 'keep' with 1 volume(s) (vol)"
truncate -s 64M "$TMP/data.img"
head -c 1000 /dev/urandom | dd of="$TMP/data.img" bs=1 seek=70000 conv=notrunc status=none
refused_unchanged "data" "$TMP/data.img" "data of an unknown kind (a non-zero byte at offset 7"

# ---- files in and out ----------------------------------------------------------------------
head -c 3000000 /dev/urandom >"$TMP/big"
printf 'hello sluice\n' >"$TMP/small"
expect "mkdir -p" 0 fs mkdir "$IMG" -p /db/sub && pass "fs mkdir -p"
expect "cp in big" 0 fs cp "$IMG" "$TMP/big" fs:/db/big && out_has "copied 3000000 bytes" && pass "fs cp in (3 MB)"
expect "cp in small" 0 fs cp "$IMG" "$TMP/small" fs:/db/sub/small && pass "fs cp in (small)"
if expect "cp out" 0 fs cp "$IMG" fs:/db/big "$TMP/big.out" && cmp -s "$TMP/big" "$TMP/big.out"; then
  pass "fs cp out returns the same bytes"
else
  fail "fs cp out: contents differ"
fi
if expect "cat" 0 fs cat "$IMG" /db/sub/small && [[ "$(cat "$TMP/out")" == "hello sluice" ]]; then pass "fs cat"; else fail "fs cat: '$(cat "$TMP/out")'"; fi
expect "cp no side" 2 fs cp "$IMG" "$TMP/small" "$TMP/x" && err_has "fs:" && pass "fs cp without an fs: side is a usage error"
expect "cp missing source" 1 fs cp "$IMG" fs:/nope "$TMP/x" && err_has "/nope" && pass "fs cp of a missing file names it"

# ---- listings ------------------------------------------------------------------------------
if expect "ls" 0 fs ls "$IMG" /db && [[ "$(cat "$TMP/out")" == $'big\nsub/' ]]; then pass "fs ls"; else fail "fs ls: $(cat "$TMP/out")"; fi
if expect "ls -R --json" 0 fs ls "$IMG" -R --json &&
   [[ $(json "sorted(e['path'] for e in d)") == "['/db', '/db/big', '/db/sub', '/db/sub/small']" ]] &&
   [[ $(json "[e['size'] for e in d if e['path']=='/db/big'][0]") == 3000000 ]]; then
  pass "fs ls -R --json"
else
  fail "fs ls -R --json: $(cat "$TMP/out")"
fi
expect "ls -l" 0 fs ls "$IMG" -l /db && out_has "3000000" && pass "fs ls -l shows sizes"
if expect "stat" 0 fs stat "$IMG" /db/big --json && [[ $(json "d['size']") == 3000000 ]] && [[ $(json "d['type']") == file ]]; then pass "fs stat --json"; fi
expect "stat missing" 1 fs stat "$IMG" /db/missing && err_has "/db/missing" && pass "fs stat of a missing path names it"
if expect "df" 0 fs df "$IMG" --json && [[ $(json "d['files']") == 2 ]] && [[ $(json "d['used_bytes'] >= 3000000") == True ]]; then
  pass "fs df --json counts files and space"
else
  fail "fs df: $(cat "$TMP/out")"
fi

# ---- removal -------------------------------------------------------------------------------
expect "rm dir without -r" 1 fs rm "$IMG" /db && pass "fs rm refuses a non-empty directory without -r"
expect "rm file" 0 fs rm "$IMG" /db/big && pass "fs rm FILE"
expect "rm -r" 0 fs rm "$IMG" -r /db && out_has "3 entries" && pass "fs rm -r DIR"
if expect "ls after rm" 0 fs ls "$IMG" && [[ -z "$(cat "$TMP/out")" ]]; then pass "the root is empty again"; else fail "ls after rm: $(cat "$TMP/out")"; fi
expect "fsck after" 0 fsck "$IMG" --json && [[ $(json "d['ok']") == True ]] && pass "fsck clean after the session"

# ---- damage --------------------------------------------------------------------------------
# One super block copy zeroed: the store still loads from the other, but fsck checks the
# blobstore first and reports it, naming the repair; after `sluice blob repair` it is clean.
expect "cp in for damage" 0 fs cp "$IMG" "$TMP/big" fs:/big
dd if=/dev/zero of="$IMG" bs=4096 count=1 conv=notrunc status=none
if expect "fsck zeroed super A" 1 fsck "$IMG" && out_has "super block copy A" && out_has "sluice blob repair"; then
  pass "fsck reports a zeroed super block copy and names blob repair"
else
  fail "fsck zeroed super A: $(cat "$TMP/out")"
fi
if expect "fsck --json zeroed super A" 1 fsck "$IMG" --json && [[ $(json "d['ok']") == False ]] &&
   [[ $(json "any('super block copy A' in p for p in d['problems'])") == True ]]; then
  pass "fsck --json reports the zeroed super block copy"
fi
if expect "blob repair super A" 0 blob repair -d "$IMG" && expect "fsck after repair" 0 fsck "$IMG" && out_has "clean" &&
   expect "cp out after repair" 0 fs cp "$IMG" fs:/big "$TMP/big.back" && cmp -s "$TMP/big" "$TMP/big.back"; then
  pass "blob repair fixes the super block copy: fsck clean, the file intact"
else
  fail "repair of super A: $(cat "$TMP/out") $(cat "$TMP/err")"
fi

# Both super block copies zeroed: the checkpoint, journal and data survive, so the tools say
# so and name the repair (not "not a SluiceFS image"); repair rebuilds it and the files are back.
expect "cp in small for damage" 0 fs cp "$IMG" "$TMP/small" fs:/small
dd if=/dev/zero of="$IMG" bs=4096 count=2 conv=notrunc status=none
if expect "fs ls both supers" 1 fs ls "$IMG" && err_has "super block damaged (both copies); a checkpoint survives" &&
   err_has "sluice blob repair" && ! err_has "not a SluiceFS image"; then
  pass "fs ls: both super block copies zeroed, naming the repair"
else
  fail "fs ls both supers: $(cat "$TMP/err")"
fi
if expect "fsck both supers" 1 fsck "$IMG" && out_has "a checkpoint survives" && out_has "sluice blob repair"; then
  pass "fsck reports both super block copies lost and names the repair"
else
  fail "fsck both supers: $(cat "$TMP/out")"
fi
if expect "repair both supers" 0 blob repair -d "$IMG" && out_has "rebuild both super block copies" &&
   expect "fsck after rebuild" 0 fsck "$IMG" && out_has ": clean" &&
   expect "cp out big after rebuild" 0 fs cp "$IMG" fs:/big "$TMP/big.back2" && cmp -s "$TMP/big" "$TMP/big.back2" &&
   expect "cp out small after rebuild" 0 fs cp "$IMG" fs:/small "$TMP/small.back" && cmp -s "$TMP/small" "$TMP/small.back"; then
  pass "blob repair rebuilds the super block: fsck clean, files byte-identical"
else
  fail "rebuild: $(cat "$TMP/out") $(cat "$TMP/err")"
fi

# fsck --json answers in JSON for an image it cannot open, and exits non-zero.
json_error_case() {  # NAME IMAGE
  if expect "fsck --json $1" 1 fsck "$2" --json && [[ $(json "d['ok']") == False ]] && [[ -n $(json "d['error']") ]]; then
    pass "fsck --json on $1: a JSON error, exit 1"
  else
    fail "fsck --json on $1: $(cat "$TMP/out")"
  fi
}
head -c 1M /dev/urandom >"$TMP/random.img"
json_error_case "random bytes" "$TMP/random.img"
head -c 4096 /dev/zero >"$TMP/small.img"
json_error_case "a 4 KiB file" "$TMP/small.img"
json_error_case "a missing file" "$TMP/missing.img"

# `sluice blob rm` under SluiceFS (or an lvol store): refused, naming the owner, the device
# untouched; with --force the blob goes, and fsck then reports it missing.
ID=$(run fs stat "$IMG" /small --json && json "d['id']")
cp "$IMG" "$TMP/before-rm.img"
if expect "blob rm owned" 1 blob rm -d "$IMG" "$ID" && err_has "belongs to a SluiceFS image" && err_has "--force" &&
   cmp -s "$IMG" "$TMP/before-rm.img"; then
  pass "blob rm refuses a SluiceFS blob, naming SluiceFS, and leaves the device unchanged"
else
  fail "blob rm owned: $(cat "$TMP/err")"
fi
LVS_BEFORE=$(md5sum <"$TMP/lvs.img")
if expect "blob rm lvol" 1 blob rm -d "$TMP/lvs.img" 2 && err_has "lvol store 'keep'" && [[ $(md5sum <"$TMP/lvs.img") == "$LVS_BEFORE" ]]; then
  pass "blob rm refuses a blob of an lvol store, naming it"
else
  fail "blob rm lvol: $(cat "$TMP/err")"
fi
if expect "blob rm --force" 0 blob rm -d "$IMG" "$ID" --force &&
   expect "fsck after forced rm" 1 fsck "$IMG" && out_has "blob(s) $ID removed with" &&
   expect "fsck --json after forced rm" 1 fsck "$IMG" --json && [[ $(json "d['ok']") == False ]]; then
  pass "blob rm --force removes it, and fsck reports the missing blob"
else
  fail "forced rm: $(cat "$TMP/out") $(cat "$TMP/err")"
fi
expect "big after forced rm" 0 fs cp "$IMG" fs:/big "$TMP/big.back3" && cmp -s "$TMP/big" "$TMP/big.back3" &&
  pass "the other file is intact"

# Both metadata copies' first page overwritten: the image cannot be trusted, and fsck says so.
dd if=/dev/urandom of="$IMG" bs=4096 count=2 conv=notrunc status=none
expect "fsck damaged" 1 fsck "$IMG" && pass "fsck fails on a damaged image: $(cat "$TMP/err")"
expect "missing device" 1 fs ls "$TMP/missing.img" && pass "a missing device is an error: $(cat "$TMP/err")"

finish
