#!/usr/bin/env bash
# End-to-end test of `sluice lvol` on a file image: create-store, create (thick and thin),
# snapshot, clone, rename, resize, inflate, decouple, delete, list, list-stores; clear errors
# for bad names, sizes and devices; `sluice blob check` agrees the store is consistent
# afterwards; and `sluice perf` runs on lvol:DEVICE/VOLUME targets.
# Usage: lvol_cli_test.sh path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp lvol_cli
# vol NAME FIELD: a field of a volume in the JSON listing in $TMP/out.
vol() { json "[v for v in d['volumes'] if v['name']=='$1'][0]['$2']"; }

IMG=$TMP/pool.img
truncate -s 128M "$IMG"
M=$((1 << 20))

# ---- the store --------------------------------------------------------------------------
if expect "create-store" 0 lvol create-store "$IMG" pool && out_has "created lvol store pool"; then pass "create-store DEVICE NAME"; fi
if expect "create-store again" 1 lvol create-store "$IMG" pool2 && err_has "already holds lvol store 'pool'"; then
  pass "create-store refuses an existing store, naming it"
fi
if expect "create-store --force" 0 lvol create-store -d "$IMG" pool --force --cluster-size 512k; then pass "create-store -d DEVICE NAME --force"; fi
if expect "list-stores" 0 lvol list-stores "$IMG" --json && [[ $(json "d[0]['name']") == pool ]] &&
   [[ $(json "d[0]['cluster_size']") == $((512 << 10)) ]] && [[ $(json "d[0]['volumes']") == 0 ]]; then
  pass "list-stores --json"
fi

# ---- volumes ----------------------------------------------------------------------------
ok=1
expect "create thick" 0 lvol create -d "$IMG" db 16M && out_has "spec lvol:uring:$IMG/db" || ok=0
expect "create thin" 0 lvol create -d "$IMG" scratch 20M --thin || ok=0
expect "create unaligned" 0 lvol create -d "$IMG" odd 1000000 || ok=0
[[ $ok -eq 1 ]] && pass "create thick, thin, and a size rounded up to clusters"
if expect "list" 0 lvol list -d "$IMG" --json && [[ $(vol db size_bytes) == $((16 * M)) ]] &&
   [[ $(vol db allocated_bytes) == $((16 * M)) ]] && [[ $(vol scratch thin) == True ]] &&
   [[ $(vol scratch allocated_bytes) == 0 ]] && [[ $(vol odd size_bytes) == $M ]] &&
   [[ $(vol db spec) == "lvol:uring:$IMG/db" ]]; then
  pass "list --json: sizes, allocation, thin"
else
  fail "list: $(cat "$TMP/out")"
fi

if expect "snapshot" 0 lvol snapshot -d "$IMG" db db-snap && expect "clone" 0 lvol clone -d "$IMG" db-snap db-clone &&
   expect "list after clone" 0 lvol list -d "$IMG" --json && [[ $(vol db-snap snapshot) == True ]] &&
   [[ $(vol db parent) == db-snap ]] && [[ $(vol db-clone parent) == db-snap ]] &&
   [[ $(json "sorted([v for v in d['volumes'] if v['name']=='db-snap'][0]['clones'])") == "['db', 'db-clone']" ]]; then
  pass "snapshot and clone"
else
  fail "snapshot/clone: $(cat "$TMP/out")"
fi
if expect "list text" 0 lvol list -d "$IMG" && out_has "^db-snap .* snapshot" && out_has "db,db-clone"; then pass "list (text)"; fi

if expect "rename" 0 lvol rename -d "$IMG" scratch tmp && expect "list after rename" 0 lvol list -d "$IMG" --json &&
   [[ $(json "sorted(v['name'] for v in d['volumes'])") == "['db', 'db-clone', 'db-snap', 'odd', 'tmp']" ]]; then
  pass "rename"
fi
if expect "resize" 0 lvol resize -d "$IMG" tmp 40M && expect "list after resize" 0 lvol list -d "$IMG" --json &&
   [[ $(vol tmp size_bytes) == $((40 * M)) ]]; then
  pass "resize"
fi
if expect "inflate" 0 lvol inflate -d "$IMG" db-clone && expect "list after inflate" 0 lvol list -d "$IMG" --json &&
   [[ $(vol db-clone parent) == None ]] && [[ $(vol db-clone allocated_bytes) == $((16 * M)) ]]; then
  pass "inflate"
fi
if expect "decouple" 0 lvol decouple -d "$IMG" db && expect "list after decouple" 0 lvol list -d "$IMG" --json &&
   [[ $(vol db parent) == None ]]; then
  pass "decouple"
fi
if expect "delete" 0 lvol delete -d "$IMG" odd && expect "list after delete" 0 lvol list -d "$IMG" --json &&
   [[ $(json "'odd' in [v['name'] for v in d['volumes']]") == False ]]; then
  pass "delete"
fi

# ---- errors -----------------------------------------------------------------------------
if expect "duplicate name" 1 lvol create -d "$IMG" db 1M && err_has "already has a volume named db"; then pass "duplicate volume name"; fi
if expect "bad name" 2 lvol create -d "$IMG" "bad/name" 1M && err_has "volume name"; then pass "bad volume name"; fi
if expect "bad size" 2 lvol create -d "$IMG" v 12Q; then pass "bad size"; fi
if expect "missing volume" 1 lvol delete -d "$IMG" nosuch && err_has "no volume 'nosuch'"; then pass "delete of a missing volume"; fi
if expect "missing args" 2 lvol create -d "$IMG" onlyname; then pass "create without a size"; fi
if expect "bad store name" 2 lvol create-store "$TMP/x.img" "no spaces"; then pass "bad store name"; fi
if expect "missing device" 1 lvol list -d "$TMP/missing.img" && err_has "No such file"; then pass "missing device"; fi
truncate -s 16M "$TMP/zero.img"
if expect "not a store" 1 lvol list -d "$TMP/zero.img" && err_has "not a Sluice blobstore"; then pass "a device that is not a store"; fi
truncate -s 64M "$TMP/blobs.img"
run blob init -d "$TMP/blobs.img"
if expect "plain blobstore" 1 lvol list -d "$TMP/blobs.img" && err_has "not an lvol store"; then pass "a blobstore that is not an lvol store"; fi
if expect "list-stores with a bad device" 1 lvol list-stores "$IMG" "$TMP/zero.img" && out_has "^pool "; then
  pass "list-stores reports the good store and fails for the bad device"
fi

# ---- the blobstore underneath is consistent ---------------------------------------------
if expect "blob check" 0 blob check -d "$IMG" && out_has "^result: clean$"; then pass "blob check: the lvol store is clean"; fi
if expect "blob ls" 0 blob ls -d "$IMG" && out_has '"lvol store pool"' && out_has '"db-snap"'; then pass "blob ls names the volumes"; fi

# ---- sluice perf on volumes -------------------------------------------------------------
run perf -T "lvol:uring:$IMG/tmp" -w randread -t 0.1
if [[ $RC -eq 2 ]] && err_has "unknown device type"; then
  echo "skip perf on lvol targets: $(cat "$TMP/err")"
else
  if expect "perf verify on a thin volume" 0 perf -T "lvol:uring:$IMG/tmp" -w verify -t 0.3 -q 8; then pass "perf verify on a thin volume"; fi
  if expect "perf on a clone" 0 lvol clone -d "$IMG" db-snap c2 && expect "perf randwrite on a clone" 0 perf -T "lvol:uring:$IMG/c2" -w randwrite -t 0.3; then
    pass "perf randwrite on a clone (copy on write)"
  fi
  if expect "perf on a snapshot" 1 perf -T "lvol:uring:$IMG/db-snap" -w randwrite -t 0.2; then pass "perf cannot write a snapshot"; fi
  if expect "perf on a missing volume" 1 perf -T "lvol:uring:$IMG/nosuch" -t 0.1; then pass "perf: missing volume"; fi
  if expect "blob check after perf" 0 blob check -d "$IMG" && out_has "^result: clean$"; then pass "blob check after perf is clean"; fi
fi

finish
