#!/usr/bin/env bash
# End-to-end test of `sluice mount` (SluiceFS through FUSE): files copied in with `sluice fs
# cp` read back through a read-only mount with ls, stat, cat, cp, du, df and md5sum; writes
# there fail with EROFS; a read-write mount takes mkdir, create, append, overwrite, truncate,
# rename, rm and rmdir from shell tools, and `sluice fs` and `sluice fsck` see the result after
# it unmounts (by SIGTERM). Device locking: a device mounted read-write refuses a second
# mount (read-write or read-only) and `sluice fs`; one mounted read-only admits other readers
# but no writer (nor the RocksDB plugin). A RocksDB DB written through the plugin reads back
# with plain `ldb --db=MNT/db scan` through the read-only mount.
# Exit 77 (skip) only when /dev/fuse or fusermount3 is unusable.
# Usage: fuse_mount_test.sh path/to/sluice [path/to/libsluice_rocksdb.so]
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice [path/to/libsluice_rocksdb.so]}
PLUGIN=${2:-}
if ! [[ -c /dev/fuse ]] || ! { exec 3<>/dev/fuse; } 2>/dev/null; then echo "SKIP: /dev/fuse is not usable"; exit 77; fi
exec 3>&-
command -v fusermount3 >/dev/null || { echo "SKIP: fusermount3 not installed (fuse3)"; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fuse_mount.XXXXXX")
MNT=$TMP/mnt MNT2=$TMP/mnt2
mkdir -p "$MNT" "$MNT2"
PIDS=()
# pass, fail and finish from lib.sh; this script's own run/expect follow where it has them.
. "$(dirname "$0")/lib.sh"

is_mounted() { grep -q " $1 fuse" /proc/self/mounts; }
# Nothing stays mounted or running, whatever happened.
cleanup() {
  for m in "$MNT" "$MNT2"; do
    is_mounted "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
  done
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # a timeout's SIGTERM still runs cleanup

T() { timeout -k 5 60 "$@"; }  # every command that touches the mount is bounded
run() {
  T "$SLUICE" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
}

# mount_bg NAME MOUNTPOINT ARGS...: starts `sluice mount ARGS MOUNTPOINT` and waits (bounded)
# for the mount to appear; sets PID.
mount_bg() {
  local name=$1 mnt=$2; shift 2
  "$SLUICE" mount "$@" "$mnt" >"$TMP/mount.$name.out" 2>"$TMP/mount.$name.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 200); do
    is_mounted "$mnt" && { pass "$name: mounted"; return 0; }
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "$name: not mounted; stderr: $(cat "$TMP/mount.$name.err")"
  return 1
}
# stop_mount NAME MOUNTPOINT HOW: unmounts (HOW: fusermount or sigterm) and waits (bounded)
# for `sluice mount` to exit 0 with the mount gone.
stop_mount() {
  local name=$1 mnt=$2 how=$3 rc=0
  if [[ $how == fusermount ]]; then T fusermount3 -u "$mnt" || fail "$name: fusermount3 -u failed"; else kill -TERM "$PID"; fi
  for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then fail "$name: sluice mount still running 30 s after $how"; return 1; fi
  wait "$PID" || rc=$?
  if [[ $rc -ne 0 ]]; then fail "$name: sluice mount exited $rc; stderr: $(cat "$TMP/mount.$name.err")"; return 1; fi
  if is_mounted "$mnt"; then fail "$name: still mounted after $how"; return 1; fi
  pass "$name: unmounted by $how, exit 0"
}
# refused NAME WHAT CMD...: CMD fails with exit 1 and one stderr line saying the device is in use.
refused() {
  local name=$1; shift
  T "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [[ $rc -ne 1 ]] || ! grep -q "is in use" "$TMP/err" || [[ $(wc -l <"$TMP/err") -ne 1 ]]; then
    fail "$name: want exit 1 and one 'is in use' line, got exit $rc: $(cat "$TMP/err")"
    is_mounted "$MNT2" && { fusermount3 -u "$MNT2" 2>/dev/null || umount -l "$MNT2"; }
    return 1
  fi
  pass "$name: $(cat "$TMP/err")"
}
# fails_with NAME ERROR CMD...: CMD fails, its stderr saying ERROR (an strerror text).
fails_with() {
  local name=$1 want=$2; shift 2
  if T "$@" 2>"$TMP/err"; then fail "$name succeeded, want '$want'"; return 1; fi
  grep -q "$want" "$TMP/err" && pass "$name: $want" || fail "$name: want '$want', got: $(cat "$TMP/err")"
}
erofs() { local name=$1; shift; fails_with "$name" "Read-only file system" "$@"; }

# ---- an image with files, made with `sluice fs` --------------------------------------------
IMG=$TMP/fs.img
truncate -s 256M "$IMG"
run mkfs "$IMG" || { fail "mkfs: $(cat "$TMP/err")"; exit 1; }
mkdir -p "$TMP/host"
printf 'hello sluice\n' >"$TMP/host/small"
head -c 3000000 /dev/urandom >"$TMP/host/big"
: >"$TMP/host/empty"
run fs mkdir -p "$IMG" /dir/sub || fail "fs mkdir: $(cat "$TMP/err")"
for f in small big empty; do run fs cp "$IMG" "$TMP/host/$f" "fs:/dir/$f" || fail "fs cp $f: $(cat "$TMP/err")"; done

# ---- read-only ---------------------------------------------------------------------------
if mount_bg ro "$MNT" "$IMG"; then
  names=$(T ls "$MNT/dir" | tr '\n' ' ')
  [[ $names == "big empty small sub " ]] && pass "ls: $names" || fail "ls $MNT/dir: '$names'"
  for f in small big empty; do
    want=$(stat -c %s "$TMP/host/$f"); got=$(T stat -c %s "$MNT/dir/$f")
    [[ $got == "$want" ]] && pass "stat size of $f: $got" || fail "stat size of $f: $got, want $want"
  done
  [[ $(T stat -c %F "$MNT/dir/sub") == directory ]] && pass "stat: sub is a directory" || fail "stat: sub is not a directory"
  [[ $(T cat "$MNT/dir/small") == "hello sluice" ]] && pass "cat" || fail "cat: $(T cat "$MNT/dir/small" 2>&1)"
  want=$(md5sum <"$TMP/host/big"); got=$(T md5sum <"$MNT/dir/big")
  [[ $got == "$want" ]] && pass "md5sum of a 3 MB file" || fail "md5sum: $got, want $want"
  T cp "$MNT/dir/big" "$TMP/big.out" && cmp -s "$TMP/host/big" "$TMP/big.out" && pass "cp out" || fail "cp out differs"
  want=$(( $(stat -c %s "$TMP/host/big") + $(stat -c %s "$TMP/host/small") ))
  got=$(T du -sb "$MNT/dir" | cut -f1)
  [[ $got == "$want" ]] && pass "du -sb: $got" || fail "du -sb: $got, want $want"
  alloc=$(T du -sk "$MNT/dir" | cut -f1)
  [[ $alloc -ge $((want / 1024)) ]] && pass "du -sk (allocated): $alloc KiB" || fail "du -sk: $alloc KiB < $((want / 1024))"
  T df -h "$MNT" | grep -q "sluice:uring:" && pass "df names the device" || fail "df: $(T df "$MNT" 2>&1)"
  [[ $(T stat -f -c %l "$MNT") == 255 ]] && pass "statfs: names up to 255" || fail "statfs: $(T stat -f "$MNT" 2>&1)"
  fails_with "ls of a missing file" "No such file or directory" ls "$MNT/nope"
  erofs "touch" touch "$MNT/new"
  erofs "write" sh -c "echo x >'$MNT/dir/small'"
  erofs "mkdir" mkdir "$MNT/newdir"
  erofs "rm" rm "$MNT/dir/small"
  erofs "mv" mv "$MNT/dir/small" "$MNT/dir/moved"

  # Readers share a device; a writer is refused.
  refused "mount --rw while mounted read-only" "$SLUICE" mount --rw "$IMG" "$MNT2"
  refused "fs cp into a device mounted read-only" "$SLUICE" fs cp "$IMG" "$TMP/host/small" fs:/x
  PID1=$PID
  if mount_bg ro2 "$MNT2" "$IMG"; then
    [[ $(T cat "$MNT2/dir/small") == "hello sluice" ]] && pass "second read-only mount reads" || fail "second read-only mount"
    stop_mount ro2 "$MNT2" fusermount
  fi
  PID=$PID1
  stop_mount ro "$MNT" fusermount
fi

# ---- read-write --------------------------------------------------------------------------
if mount_bg rw "$MNT" --rw "$IMG"; then
  refused "second mount --rw" "$SLUICE" mount --rw "$IMG" "$MNT2"
  refused "read-only mount of a device mounted read-write" "$SLUICE" mount "$IMG" "$MNT2"
  refused "fs ls of a device mounted read-write" "$SLUICE" fs ls "$IMG"
  T mkdir -p "$MNT/new/deep" || fail "mkdir -p"
  T sh -c "echo hello >'$MNT/new/a.txt' && echo world >>'$MNT/new/a.txt'" || fail "create and append"
  T cp "$TMP/host/big" "$MNT/new/big" || fail "cp in"
  T mv "$MNT/new/a.txt" "$MNT/new/b.txt" || fail "mv"
  T rm "$MNT/dir/small" || fail "rm"
  T rmdir "$MNT/dir/sub" || fail "rmdir"
  T sh -c "printf 0123456789 >'$MNT/new/over' && printf AB | dd of='$MNT/new/over' bs=1 seek=4 conv=notrunc,fsync status=none" ||
    fail "overwrite in place"
  T truncate -s 100000 "$MNT/new/grown" && T truncate -s 5 "$MNT/new/big2" && pass "truncate" || fail "truncate"
  T touch "$MNT/new/b.txt" && pass "touch an existing file" || fail "touch an existing file"
  fails_with "rmdir of a non-empty directory" "Directory not empty" rmdir "$MNT/new"
  fails_with "mkdir of an existing directory" "File exists" mkdir "$MNT/new"
  fails_with "a file as a directory" "Not a directory" touch "$MNT/new/big/x"
  fails_with "cat of a directory" "Is a directory" cat "$MNT/new"
  [[ $(T cat "$MNT/new/b.txt") == $'hello\nworld' ]] && pass "read back through the mount" || fail "read back"
  # Several writers and readers at once: the loop's threads each use their own channel.
  # (`wait` names its jobs: a bare one would wait for the mount itself.)
  jobs_=()
  for i in 1 2 3 4; do T cp "$TMP/host/big" "$MNT/new/par$i" & jobs_+=($!); done
  wait "${jobs_[@]}"
  jobs_=()
  for i in 1 2 3 4; do T md5sum <"$MNT/new/par$i" >"$TMP/par$i.md5" & jobs_+=($!); done
  wait "${jobs_[@]}"
  want=$(md5sum <"$TMP/host/big"); ok=1
  for i in 1 2 3 4; do [[ $(cat "$TMP/par$i.md5") == "$want" ]] || ok=0; done
  [[ $ok == 1 ]] && pass "4 parallel writers, then 4 parallel readers" || fail "parallel copies differ"
  T rm "$MNT"/new/par? || fail "rm of the parallel copies"
  stop_mount rw "$MNT" sigterm
fi

# What the read-write mount did is on the image, durably and cleanly.
run fs cat "$IMG" /new/b.txt
[[ $RC -eq 0 && $(cat "$TMP/out") == $'hello\nworld' ]] && pass "fs cat sees the appended file" || fail "fs cat /new/b.txt: $(cat "$TMP/out" "$TMP/err")"
run fs cp "$IMG" fs:/new/big "$TMP/big.back"
[[ $RC -eq 0 ]] && cmp -s "$TMP/host/big" "$TMP/big.back" && pass "fs cp out matches what cp wrote" || fail "fs cp /new/big differs"
run fs cat "$IMG" /new/over
[[ $(cat "$TMP/out") == 0123AB6789 ]] && pass "overwrite in place" || fail "overwrite: $(cat "$TMP/out")"
run fs ls -R "$IMG" /
listing=$(tr '\n' ' ' <"$TMP/out")
[[ $listing == *"b.txt big big2 deep/ grown over"* && $listing != *small* && $listing != *sub/* ]] &&
  pass "fs ls -R: $listing" || fail "fs ls -R: $listing"
run fs stat --json "$IMG" /new/grown
grep -q '"size": 100000' "$TMP/out" && pass "truncate grew a file" || fail "fs stat /new/grown: $(cat "$TMP/out")"
run fsck "$IMG"
[[ $RC -eq 0 ]] && grep -q clean "$TMP/out" && pass "fsck: $(cat "$TMP/out")" || fail "fsck: exit $RC: $(cat "$TMP/out" "$TMP/err")"

# ---- RocksDB: written through the plugin, read with plain ldb through the mount ----------
if [[ -z $PLUGIN || ! -f $PLUGIN ]] || ! command -v db_bench >/dev/null || ! command -v ldb >/dev/null; then
  echo "note: RocksDB part skipped (no plugin or no rocksdb-tools)"
else
  DB_IMG=$TMP/db.img
  truncate -s 256M "$DB_IMG"
  run mkfs "$DB_IMG" || fail "mkfs db image: $(cat "$TMP/err")"
  if LD_PRELOAD=$PLUGIN T db_bench "--fs_uri=sluice://uring:$DB_IMG" --db=/db --benchmarks=fillrandom --num=2000 \
       >"$TMP/bench.out" 2>&1; then
    pass "db_bench fillrandom through the plugin"
    LD_PRELOAD=$PLUGIN T ldb "--fs_uri=sluice://uring:$DB_IMG" --db=/db scan >"$TMP/scan.plugin" 2>"$TMP/err" ||
      fail "ldb scan through the plugin: $(cat "$TMP/err")"
    if mount_bg db "$MNT" "$DB_IMG"; then
      if T ldb "--db=$MNT/db" scan >"$TMP/scan.fuse" 2>"$TMP/err"; then
        n=$(wc -l <"$TMP/scan.fuse")
        [[ $n -gt 0 ]] && cmp -s "$TMP/scan.plugin" "$TMP/scan.fuse" && pass "ldb scan through FUSE: $n keys, as through the plugin" ||
          fail "ldb scan through FUSE: $n keys, differs from the plugin's $(wc -l <"$TMP/scan.plugin")"
      else
        fail "ldb --db=$MNT/db scan: $(tail -3 "$TMP/err")"
      fi
      LD_PRELOAD=$PLUGIN T db_bench "--fs_uri=sluice://uring:$DB_IMG" --db=/db --use_existing_db=1 --benchmarks=fillrandom \
        --num=10 >"$TMP/bench2.out" 2>&1 && fail "the plugin wrote to a device mounted read-only" ||
        { grep -q "is in use" "$TMP/bench2.out" && pass "the plugin is refused a device mounted read-only" ||
          fail "plugin refusal without 'is in use': $(tail -3 "$TMP/bench2.out")"; }
      stop_mount db "$MNT" fusermount
    fi
  else
    fail "db_bench fillrandom: $(tail -5 "$TMP/bench.out")"
  fi
fi

# ---- usage errors ------------------------------------------------------------------------
run mount "$IMG" "$TMP/host/small"
[[ $RC -eq 1 ]] && grep -q "^sluice mount: .*not a directory" "$TMP/err" && pass "a mountpoint that is a file is refused" ||
  fail "mount on a file: exit $RC: $(cat "$TMP/err")"
run mount "$TMP/nope.img" "$MNT"
[[ $RC -ne 0 && $(wc -l <"$TMP/err") -eq 1 ]] && grep -q "^sluice mount: " "$TMP/err" && pass "a missing device: $(cat "$TMP/err")" ||
  fail "mount of a missing device: exit $RC: $(cat "$TMP/err")"

finish
