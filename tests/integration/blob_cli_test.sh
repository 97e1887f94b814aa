#!/usr/bin/env bash
# End-to-end test of `sluice blob` on file images: init, create/snapshot/clone, ls, show, dump,
# check (clean, unclean, planted corruption in a checkpoint page, a super block copy and the
# journal), repair (what it fixes and what it refuses), and clear errors for bad devices.
# Offsets of planted corruption come from `sluice blob dump --json` and the documented layout
# (super block copies at 0 and 4096). Usage: blob_cli_test.sh path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp blob_cli
SLUICE_CMD=(blob)

# flip FILE OFFSET: inverts one byte in place.
flip() {
  python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], 'r+b') as f:
    off = int(sys.argv[2]); f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))
PY
}

# set_version FILE VERSION: rewrites the format version of both super block copies with a
# valid CRC-32C, as a newer Sluice would have written them.
set_version() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
table = []
for i in range(256):
    c = i
    for _ in range(8): c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
def crc32c(b):
    c = 0xffffffff
    for x in b: c = table[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
with open(sys.argv[1], 'r+b') as f:
    for copy in (0, 1):
        f.seek(copy * 4096); p = bytearray(f.read(4096))
        p[8:12] = struct.pack('<I', int(sys.argv[2])); p[12:16] = b'\0\0\0\0'
        p[12:16] = struct.pack('<I', crc32c(p))
        f.seek(copy * 4096); f.write(p)
PY
}

sum() { md5sum "$1" | cut -d' ' -f1; }

IMG=$TMP/store.img
truncate -s 64M "$IMG"

# ---- init, and blobs to look at --------------------------------------------------------
if expect "init" 0 init -d "$IMG" && out_has "initialized blobstore"; then pass "init"; else fail "init: $(cat "$TMP/out")"; fi
if expect "init over a store" 1 init -d "$IMG" && err_has "already holds a Sluice blobstore" && err_has "--force"; then
  pass "init refuses to overwrite a store"
fi
if expect "init --force" 0 init -d "$IMG" --force --cluster-size 512k; then pass "init --force with 512k clusters"; fi

ok=1
run create -d "$IMG" --size 2M --name thick; [[ $RC -eq 0 ]] && THICK=$(cat "$TMP/out") || ok=0
run create -d "$IMG" --size 8M --thin --name sparse --xattr color=blue; [[ $RC -eq 0 ]] && THIN=$(cat "$TMP/out") || ok=0
run snapshot -d "$IMG" "${THICK:-0}" --name snap; [[ $RC -eq 0 ]] && SNAP=$(cat "$TMP/out") || ok=0
run clone -d "$IMG" "${SNAP:-0}" --name clone; [[ $RC -eq 0 ]] && CLONE=$(cat "$TMP/out") || ok=0
run create -d "$IMG" --size 1M --name doomed; [[ $RC -eq 0 ]] && DOOMED=$(cat "$TMP/out") || ok=0
run rm -d "$IMG" "${DOOMED:-0}"; [[ $RC -eq 0 ]] || ok=0
run resize -d "$IMG" "${THIN:-0}" 12M; [[ $RC -eq 0 ]] || ok=0
if [[ $ok -eq 1 ]]; then pass "create, snapshot, clone, rm, resize"; else fail "making blobs: $(cat "$TMP/err")"; fi

# ---- ls ---------------------------------------------------------------------------------
if expect "ls" 0 ls -d "$IMG" && out_has '"sparse"' && out_has '"snap"' && out_has "read-only|snapshot" && ! out_has '"doomed"'; then
  pass "ls"
else
  fail "ls: $(cat "$TMP/out")"
fi
if expect "ls --json" 0 ls -d "$IMG" --json &&
   [[ $(json "len(d['blobs'])") == 4 ]] &&
   [[ $(json "[b for b in d['blobs'] if b['id']==$SNAP][0]['allocated_clusters']") == 4 ]] &&
   [[ $(json "[b for b in d['blobs'] if b['id']==$THIN][0]['size_bytes']") == $((12 << 20)) ]] &&
   [[ $(json "[b for b in d['blobs'] if b['id']==$CLONE][0]['parent']") == "$SNAP" ]] &&
   [[ $(json "[b for b in d['blobs'] if b['id']==$THIN][0]['thin']") == True ]] &&
   [[ $(json "d['store']['cluster_size']") == 524288 ]]; then
  pass "ls --json"
else
  fail "ls --json: $(head -c 600 "$TMP/out")"
fi

# ---- show -------------------------------------------------------------------------------
if expect "show" 0 show -d "$IMG" "$SNAP" && out_has "extents" && out_has "-> device" && out_has "clones:.*$THICK"; then
  pass "show snapshot"
else
  fail "show: $(cat "$TMP/out")"
fi
if expect "show --json" 0 show -d "$IMG" "$SNAP" --json &&
   [[ $(json "sum(e['count'] for e in d['extents'] if e['device_first'] is not None)") == 4 ]] &&
   [[ $(json "sorted(d['clones'])") == "$(python3 -c "print(sorted([$THICK, $CLONE]))")" ]] &&
   [[ $(json "d['xattrs']['name']") == snap ]]; then
  pass "show --json: extents cover the allocation, clones listed"
else
  fail "show --json: $(head -c 600 "$TMP/out")"
fi
if expect "show clone" 0 show -d "$IMG" "$CLONE" && out_has "unallocated (reads from blob $SNAP)"; then pass "show clone reads from its snapshot"; fi
if expect "show sparse" 0 show -d "$IMG" "$THIN" --json && [[ $(json "d['xattrs']['color']") == blue ]]; then pass "show user xattrs"; fi
if expect "show missing" 1 show -d "$IMG" 999 && err_has "no blob 999"; then pass "show of a missing blob"; fi

# ---- dump -------------------------------------------------------------------------------
if expect "dump" 0 dump -d "$IMG" && out_has "super block copy A (page 0, offset 0): valid" &&
   out_has "super block copy B (page 1, offset 4096): valid" && out_has "CREATE blob=$SNAP" && out_has "NEXT_ID" &&
   out_has "^replay: "; then
  pass "dump"
else
  fail "dump: $(head -40 "$TMP/out")"
fi
if expect "dump --json" 0 dump -d "$IMG" --json &&
   [[ $(json "all(c['valid'] for c in d['super'])") == True ]] &&
   [[ $(json "d['checkpoint']['valid']") == True ]] &&
   [[ $(json "sum(1 for p in d['checkpoint']['pages'] for r in p['records'] if r['type']=='CREATE')") == 4 ]] &&
   [[ $(json "d['journal']['stop']['kind']") == end ]]; then
  pass "dump --json"
else
  fail "dump --json: $(head -c 800 "$TMP/out")"
fi
if expect "dump --all" 0 dump -d "$IMG" --all && out_has "every ring page"; then pass "dump --all lists the ring"; fi

# ---- check on a clean store -------------------------------------------------------------
if expect "check clean" 0 check -d "$IMG" && out_has "^result: clean$"; then pass "check: clean"; else fail "check clean: $(cat "$TMP/out")"; fi
if expect "check --json" 0 check -d "$IMG" --json && [[ $(json "d['clean']") == True ]] &&
   [[ $(json "d['needs_recovery']") == False ]] && [[ $(json "d['state']['blobs']") == 4 ]]; then
  pass "check --json"
fi
if expect "repair clean" 0 repair -d "$IMG" && out_has "nothing to repair"; then pass "repair of a clean store does nothing"; fi

# ---- a store left unclean (as by a crash) -------------------------------------------------
cp "$IMG" "$TMP/unclean.img"
run create -d "$TMP/unclean.img" --size 1M --name crashy --no-unload
BEFORE=$(sum "$TMP/unclean.img")
ok=1
expect "check unclean" 0 check -d "$TMP/unclean.img" && out_has "needs recovery" || ok=0
expect "ls unclean" 0 ls -d "$TMP/unclean.img" && out_has '"crashy"' || ok=0
expect "dump unclean" 0 dump -d "$TMP/unclean.img" && out_has "CREATE blob=" || ok=0
expect "show unclean" 0 show -d "$TMP/unclean.img" "$SNAP" || ok=0
expect "repair dry run" 0 repair -d "$TMP/unclean.img" --dry-run && out_has "would: replay" || ok=0
if [[ $ok -eq 1 && $(sum "$TMP/unclean.img") == "$BEFORE" ]]; then
  pass "unclean store: check says it needs recovery; ls/show/dump/check/dry-run wrote nothing"
else
  fail "unclean store (image changed: $([[ $(sum "$TMP/unclean.img") == "$BEFORE" ]] && echo no || echo yes)): $(cat "$TMP/out")"
fi
if expect "repair unclean" 0 repair -d "$TMP/unclean.img" && out_has "replay" && out_has "check is clean" &&
   expect "check after recovery" 0 check -d "$TMP/unclean.img" --json && [[ $(json "d['needs_recovery']") == False ]]; then
  pass "repair recovers an unclean store"
else
  fail "repair unclean: $(cat "$TMP/out")"
fi

# ---- planted corruption: a checkpoint page ----------------------------------------------
cp "$IMG" "$TMP/ckpt.img"
run dump -d "$TMP/ckpt.img" --json
OFF=$(json "d['checkpoint']['pages'][0]['offset'] + 200")
flip "$TMP/ckpt.img" "$OFF"
if expect "check damaged checkpoint" 1 check -d "$TMP/ckpt.img" && out_has "^DAMAGE checkpoint seq" &&
   out_has "checksum mismatch" && err_has "damaged"; then
  pass "check finds the flipped byte in the checkpoint page at offset $OFF"
else
  fail "damaged checkpoint: $(cat "$TMP/out")"
fi
if expect "check --json damaged checkpoint" 1 check -d "$TMP/ckpt.img" --json && [[ $(json "d['checkpoint_damaged']") == True ]]; then
  pass "check --json names the checkpoint"
fi
BEFORE=$(sum "$TMP/ckpt.img")
if expect "repair damaged checkpoint" 1 repair -d "$TMP/ckpt.img" && err_has "refusing" && [[ $(sum "$TMP/ckpt.img") == "$BEFORE" ]]; then
  pass "repair refuses a damaged checkpoint and writes nothing"
fi
if expect "ls damaged checkpoint" 1 ls -d "$TMP/ckpt.img" && err_has "checkpoint"; then pass "ls of a damaged store: one line"; fi

# ---- planted corruption: one super block copy -------------------------------------------
for copy in A B; do
  cp "$IMG" "$TMP/super.img"
  base=$([[ $copy == A ]] && echo 0 || echo 4096)
  flip "$TMP/super.img" $((base + 300))
  if expect "check damaged super $copy" 1 check -d "$TMP/super.img" &&
     out_has "^DAMAGE super block copy $copy (page $([[ $copy == A ]] && echo 0 || echo 1), offset $base): checksum mismatch"; then
    pass "check finds damaged super block copy $copy"
  else
    fail "damaged super $copy: $(cat "$TMP/out")"
  fi
  if expect "ls with super $copy damaged" 0 ls -d "$TMP/super.img" && out_has '"snap"'; then pass "ls uses the good copy"; fi
  if expect "repair super $copy" 0 repair -d "$TMP/super.img" && out_has "super block copy $copy rewritten" &&
     expect "check after super repair" 0 check -d "$TMP/super.img" && out_has "^result: clean$" &&
     expect "dump after super repair" 0 dump -d "$TMP/super.img" --json && [[ $(json "all(c['valid'] for c in d['super'])") == True ]]; then
    pass "repair rewrites super block copy $copy; check is clean"
  else
    fail "repair super $copy: $(cat "$TMP/out") $(cat "$TMP/err")"
  fi
done

# Both copies damaged: the checkpoint and the data survive, so every tool says so and names
# the repair, which rebuilds the super block from the newest checkpoint.
cp "$IMG" "$TMP/both.img"
flip "$TMP/both.img" 300
flip "$TMP/both.img" 4396
if expect "check both supers" 1 check -d "$TMP/both.img" && out_has "DAMAGE super block copy A" && out_has "DAMAGE super block copy B" &&
   out_has "a checkpoint survives: run \`sluice blob repair"; then
  pass "check: both super block copies damaged, a checkpoint survives"
fi
if expect "ls both supers" 1 ls -d "$TMP/both.img" && err_has "super block damaged (both copies); a checkpoint survives" &&
   err_has "sluice blob repair -d"; then
  pass "ls: both super block copies damaged, naming the repair, one line"
fi
BEFORE=$(sum "$TMP/both.img")
if expect "repair both supers dry run" 0 repair -d "$TMP/both.img" --dry-run && out_has "would: rebuild both super block copies" &&
   [[ $(sum "$TMP/both.img") == "$BEFORE" ]]; then
  pass "repair --dry-run plans the rebuild and writes nothing"
fi
if expect "repair both supers" 0 repair -d "$TMP/both.img" && out_has "rebuild both super block copies" &&
   expect "check after rebuild" 0 check -d "$TMP/both.img" && out_has "^result: clean$" &&
   expect "ls after rebuild" 0 ls -d "$TMP/both.img" && out_has '"snap"'; then
  pass "repair rebuilds the super block from the checkpoint; check is clean, the blobs are back"
else
  fail "repair both supers: $(cat "$TMP/out") $(cat "$TMP/err")"
fi
# With the checkpoint gone too there is nothing to go by.
cp "$IMG" "$TMP/none.img"
dd if=/dev/zero of="$TMP/none.img" bs=4096 count=3 conv=notrunc status=none
if expect "repair nothing left" 1 repair -d "$TMP/none.img" && err_has "not a Sluice blobstore"; then
  pass "repair refuses without a super block or a checkpoint"
fi
# A cluster size that several layouts fit must be given.
truncate -s 64M "$TMP/big-clusters.img"
run init -d "$TMP/big-clusters.img" --cluster-size 4M && run create -d "$TMP/big-clusters.img" --size 4M --name x
dd if=/dev/zero of="$TMP/big-clusters.img" bs=4096 count=2 conv=notrunc status=none
if expect "repair ambiguous" 1 repair -d "$TMP/big-clusters.img" && err_has "several cluster sizes fit" &&
   expect "repair --cluster-size" 0 repair -d "$TMP/big-clusters.img" --cluster-size 4M &&
   expect "check after --cluster-size" 0 check -d "$TMP/big-clusters.img"; then
  pass "repair asks for --cluster-size when several fit, and rebuilds with it"
else
  fail "repair ambiguous: $(cat "$TMP/out") $(cat "$TMP/err")"
fi

# ---- the journal: a torn tail is normal, a hole before intact batches is damage ----------
cp "$IMG" "$TMP/journal.img"
run create -d "$TMP/journal.img" --size 1M --name last --no-unload  # a reservation batch, then the create
run dump -d "$TMP/journal.img" --json
if [[ $(json "len(d['journal']['batches'])") -ge 2 ]]; then
  FIRST=$(json "[p['offset'] for p in d['journal']['pages'] if p['valid']][0]")
  LAST=$(json "[p['offset'] for p in d['journal']['pages'] if p['valid']][-1]")
  cp "$TMP/journal.img" "$TMP/torn.img"
  flip "$TMP/torn.img" $((LAST + 100))
  if expect "check torn tail" 0 check -d "$TMP/torn.img" && out_has "^info   journal: replay stops at a torn batch" &&
     out_has "^result: clean (needs recovery)$"; then
    pass "check: a torn journal tail is information, not damage"
  else
    fail "torn tail: $(cat "$TMP/out")"
  fi
  if expect "repair torn tail" 0 repair -d "$TMP/torn.img" && expect "check after torn repair" 0 check -d "$TMP/torn.img" &&
     out_has "^result: clean$"; then
    pass "repair recovers past a torn tail"
  fi
  cp "$TMP/journal.img" "$TMP/hole.img"
  flip "$TMP/hole.img" $((FIRST + 100))
  if expect "check journal hole" 1 check -d "$TMP/hole.img" && out_has "^DAMAGE journal: .*intact page"; then
    pass "check: intact batches after a damaged journal page are damage"
  else
    fail "journal hole: $(cat "$TMP/out")"
  fi
  BEFORE=$(sum "$TMP/hole.img")
  if expect "repair journal hole" 1 repair -d "$TMP/hole.img" && err_has "force" && [[ $(sum "$TMP/hole.img") == "$BEFORE" ]]; then
    pass "repair refuses to drop acknowledged batches"
  fi
  if expect "repair --force" 0 repair -d "$TMP/hole.img" --force && out_has "DISCARD" &&
     expect "check after forced repair" 0 check -d "$TMP/hole.img"; then
    pass "repair --force recovers, saying what it dropped"
  fi
else
  fail "journal: want 2 batches after a create left unclean, dump says: $(json "d['journal']['batches']")"
fi

# ---- bad devices ------------------------------------------------------------------------
for cmd in check ls dump repair "show 1"; do
  if expect "missing file ($cmd)" 1 $cmd -d "$TMP/missing.img" && err_has "No such file"; then pass "$cmd: missing file"; fi
done
truncate -s 16M "$TMP/zero.img"
for cmd in check ls dump repair "show 1"; do
  if expect "not a store ($cmd)" 1 $cmd -d "$TMP/zero.img" && err_has "not a Sluice blobstore"; then pass "$cmd: not a blobstore"; fi
done
cp "$IMG" "$TMP/newer.img"
set_version "$TMP/newer.img" 2
for cmd in check ls dump repair; do
  if expect "newer version ($cmd)" 1 $cmd -d "$TMP/newer.img" && err_has "newer"; then pass "$cmd: newer format version"; fi
done
if expect "init over a newer store" 1 init -d "$TMP/newer.img" && err_has "force"; then pass "init refuses a newer store"; fi
if expect "a directory" 2 check -d "$TMP" && err_has "directory"; then pass "check: a directory is a usage error"; fi
truncate -s 1M "$TMP/small.img"
if expect "too small" 1 init -d "$TMP/small.img" && err_has "too small"; then pass "init: device too small"; fi
if expect "unknown scheme" 2 check -d floppy:1G; then pass "unknown device type is a usage error"; fi
if expect "bad cluster size" 2 init -d "$TMP/zero.img" --cluster-size 5000; then pass "bad cluster size"; fi
if expect "no device" 2 check; then pass "missing --device"; fi
if expect "malloc" 0 init -d malloc:32M && out_has "initialized"; then pass "init on a malloc device"; fi
if expect "explicit uring spec" 0 check -d "uring:$IMG"; then pass "explicit uring: spec"; fi
if expect "aio spec" 0 ls -d "aio:$IMG"; then pass "aio: spec"; fi

# ---- one writer per image ---------------------------------------------------------------
# lock_held FILE: whether some process holds a lock on FILE (F_OFD_GETLK, as Sluice locks).
lock_held() {
  python3 - "$1" <<'PY'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fl = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
held = struct.unpack('hhqqi4x', fcntl.fcntl(fd, getattr(fcntl, 'F_OFD_GETLK', 36), fl))[0]
sys.exit(0 if held != fcntl.F_UNLCK else 1)
PY
}
LOCKED=$TMP/locked.img
truncate -s 16M "$LOCKED"
run init -d "$LOCKED"
# A reader in another process (perf randread opens the image read-only): readers share the
# image, a writer is refused with a message that says who holds it, and gets it afterwards.
SLUICE_CMD=()
bg_start "$SLUICE" perf -T "$LOCKED" -w randread -o 4k -q 1 -t 4 >"$TMP/perf.out" 2>&1
READER=$BG_PID
SLUICE_CMD=(blob)
for _ in $(seq 50); do lock_held "$LOCKED" && break; sleep 0.1; done
if lock_held "$LOCKED"; then
  if expect "check beside a reader" 0 check -d "$LOCKED"; then pass "a second reader shares the image"; fi
  if expect "create beside a reader" 1 create -d "$LOCKED" --size 1M && err_has "in use" && err_has "read-only"; then
    pass "a writer is refused while another process reads the image"
  fi
else
  fail "perf never locked $LOCKED: $(cat "$TMP/perf.out")"
fi
wait_or_kill "$READER" 10
if expect "create after the reader" 0 create -d "$LOCKED" --size 1M; then pass "the lock goes with the reader"; fi

finish
