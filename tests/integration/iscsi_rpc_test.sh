#!/usr/bin/env bash
# `sluice serve` with the iSCSI target's RPC methods (SPDK's iscsi_* names): options, a portal
# group on 127.0.0.1 (a free port), an initiator group and a target node made over RPC; the
# listings; libiscsi's tools (Debian's libiscsi-bin) discovering the node and reading its
# LUN; CHAP (an auth group, a node and discovery requiring it, the right and a wrong secret);
# bad calls (each one error, the daemon unchanged); save_config and a restart from it. The
# protocol itself is tested by tests/unit/iscsi and the conformance suite.
#   iscsi_rpc_test.sh SLUICE
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=$1

make_tmp iscsi-rpc
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=iqn.2026-12.io.sluice.test
node=$base:disk0
chap_node=$base:secure
ini=iqn.2026-12.io.sluice:initiator
secret=abcdefghijkl0123  # 12..255 bytes
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 8192, "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc1", "num_blocks": 4096, "block_size": 4096}}]}]}
JSON
rpc() { serve_rpc "$@"; }
tools=1
for t in iscsi-ls iscsi-inq iscsi-readcapacity16; do
  command -v "$t" >/dev/null || { tools=0; echo "skip the initiator checks: $t is missing (Debian's libiscsi-bin)"; break; }
done
itool() { timeout 20 "$@" >"$TMP/out" 2>"$TMP/err"; }

if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
pass "sluice serve up with two malloc bdevs"

step() {  # NAME METHOD PARAMS: one call that must succeed
  if rpc "$2" "$3"; then pass "$1"; else fail "$1: $(cat "$TMP/out" "$TMP/err")"; fi
}
bad() {  # NAME METHOD PARAMS PATTERN
  if ! rpc "$2" "$3" && grep -q -- "$4" "$TMP/err"; then pass "refused: $1"; else fail "$1: $(cat "$TMP/out" "$TMP/err")"; fi
}
# A call that fails before any configuration starts nothing: iscsi_set_options still comes first.
bad "deleting a portal group before any exists" iscsi_delete_portal_group '{"tag": 9}' "9"
step "iscsi_set_options before anything else" iscsi_set_options \
  '{"node_base": "'$base'", "max_sessions": 16, "max_queue_depth": 32, "nop_timeout": 30}'
if rpc iscsi_get_options && [[ $(json 'd["node_base"], d["max_sessions"], d["max_queue_depth"], d["require_chap"]') == "$base 16 32 False" ]]; then
  pass "iscsi_get_options: the options set"
else
  fail "iscsi_get_options: $(cat "$TMP/out" "$TMP/err")"
fi
step "iscsi_create_portal_group on 127.0.0.1:$port" iscsi_create_portal_group \
  '{"tag": 1, "portals": [{"host": "127.0.0.1", "port": "'$port'"}]}'
step "iscsi_create_initiator_group" iscsi_create_initiator_group \
  '{"tag": 2, "initiators": ["ANY"], "netmasks": ["127.0.0.1/32"]}'
step "iscsi_create_target_node (a short name under node_base)" iscsi_create_target_node \
  '{"name": "disk0", "alias_name": "Disk zero", "luns": [{"bdev_name": "Malloc0", "lun_id": 0}],
    "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 2}], "queue_depth": 16, "disable_chap": true}'
step "iscsi_target_node_add_lun without lun_id" iscsi_target_node_add_lun '{"name": "'$node'", "bdev_name": "Malloc1"}'

check_state() {  # WHAT: the listings show the groups and the node
  if rpc iscsi_get_target_nodes && cp "$TMP/out" "$TMP/nodes.json" &&
     rpc iscsi_get_portal_groups && cp "$TMP/out" "$TMP/pgs.json" &&
     rpc iscsi_get_initiator_groups && cp "$TMP/out" "$TMP/igs.json" &&
     python3 - "$TMP" "$node" "$port" <<'PY'
import json, sys
tmp, node, port = sys.argv[1:]
nodes = {n["name"]: n for n in json.load(open(tmp + "/nodes.json"))}
n = nodes[node]
assert n["alias_name"] == "Disk zero", n
assert n["luns"] == [{"bdev_name": "Malloc0", "lun_id": 0}, {"bdev_name": "Malloc1", "lun_id": 1}], n["luns"]
assert n["pg_ig_maps"] == [{"pg_tag": 1, "ig_tag": 2}], n
assert n["queue_depth"] == 16 and n["disable_chap"] and not n["require_chap"] and n["chap_group"] == 0, n
assert not n["header_digest"] and not n["data_digest"], n
pgs = json.load(open(tmp + "/pgs.json"))
assert pgs == [{"tag": 1, "portals": [{"host": "127.0.0.1", "port": port}], "private": False}], pgs
igs = json.load(open(tmp + "/igs.json"))
assert igs == [{"tag": 2, "initiators": ["ANY"], "netmasks": ["127.0.0.1/32"]}], igs
PY
  then pass "iscsi_get_target_nodes, _portal_groups, _initiator_groups: $1"; else fail "listings $1: $(cat "$TMP/out" "$TMP/err")"; fi
}
check_state "as made"

if [[ $tools -eq 1 ]]; then
  if itool iscsi-ls -i "$ini" -s "iscsi://127.0.0.1:$port" && grep -q "Target:$node" "$TMP/out" &&
     grep -q "Lun:1" "$TMP/out"; then
    pass "iscsi-ls discovers the node and its two LUNs"
  else
    fail "iscsi-ls: $(cat "$TMP/out" "$TMP/err")"
  fi
  if itool iscsi-inq -i "$ini" "iscsi://127.0.0.1:$port/$node/0" && grep -qi "Sluice\|vendor" "$TMP/out"; then
    pass "iscsi-inq: standard INQUIRY of LUN 0"
  else
    fail "iscsi-inq: $(cat "$TMP/out" "$TMP/err")"
  fi
  if itool iscsi-readcapacity16 -s -i "$ini" "iscsi://127.0.0.1:$port/$node/1" && [[ $(cat "$TMP/out") == $((4096 * 4096)) ]]; then
    pass "iscsi-readcapacity16: LUN 1 is Malloc1's 16 MiB"
  else
    fail "iscsi-readcapacity16: $(cat "$TMP/out" "$TMP/err")"
  fi
  # A session held open by iscsi-perf (reading until stopped): listed, and it blocks add_lun.
  bg_start timeout 30 iscsi-perf -i "$ini" "iscsi://127.0.0.1:$port/$node/0" >"$TMP/perf.out" 2>&1
  perf=$BG_PID
  listed=0
  for _ in $(seq 1 100); do
    rpc iscsi_get_connections && [[ $(json '[(c["target_node_name"], c["initiator_name"], c["session_type"]) for c in d]') == "[('$node', '$ini', 'normal')]" ]] && { listed=1; break; }
    sleep 0.1
  done
  if [[ $listed -eq 1 ]]; then pass "iscsi_get_connections: iscsi-perf's session"; else fail "iscsi_get_connections: $(cat "$TMP/out" "$TMP/err" "$TMP/perf.out")"; fi
  if ! rpc iscsi_target_node_add_lun '{"name": "'$node'", "bdev_name": "Malloc1", "lun_id": 5}' && grep -q "session" "$TMP/err"; then
    pass "refused: iscsi_target_node_add_lun while a session is open (says so)"
  else
    fail "add_lun with a session: $(cat "$TMP/out" "$TMP/err")"
  fi
  kill -INT "$perf" 2>/dev/null
  wait_or_kill "$perf" 10
  gone=0
  for _ in $(seq 1 100); do
    rpc iscsi_get_connections && [[ $(json 'len(d)') == 0 ]] && { gone=1; break; }
    sleep 0.1
  done
  if [[ $gone -eq 1 ]]; then pass "iscsi_get_connections: none once iscsi-perf stops"; else fail "connections left: $(cat "$TMP/out")"; fi
fi

# CHAP: an auth group, a node requiring CHAP, discovery requiring it too.
step "iscsi_create_auth_group" iscsi_create_auth_group '{"tag": 3, "secrets": [{"user": "alice", "secret": "'$secret'"}]}'
step "iscsi_create_target_node with require_chap" iscsi_create_target_node \
  '{"name": "secure", "luns": [{"bdev_name": "Malloc0", "lun_id": 0}], "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 2}],
    "require_chap": true, "chap_group": 3}'
step "iscsi_set_discovery_auth requiring CHAP" iscsi_set_discovery_auth '{"require_chap": true, "chap_group": 3}'
if rpc iscsi_get_auth_groups && [[ $(json 'd == [{"tag": 3, "secrets": [{"user": "alice", "secret": "'$secret'"}]}]') == True ]]; then
  pass "iscsi_get_auth_groups"
else
  fail "iscsi_get_auth_groups: $(cat "$TMP/out" "$TMP/err")"
fi
if [[ $tools -eq 1 ]]; then
  if itool iscsi-inq -i "$ini" "iscsi://alice%$secret@127.0.0.1:$port/$chap_node/0"; then
    pass "CHAP: iscsi-inq with the right secret"
  else
    fail "CHAP right secret: $(cat "$TMP/out" "$TMP/err")"
  fi
  if ! itool iscsi-inq -i "$ini" "iscsi://alice%wrongsecret1234@127.0.0.1:$port/$chap_node/0"; then
    pass "CHAP: iscsi-inq with a wrong secret is refused"
  else
    fail "CHAP wrong secret accepted: $(cat "$TMP/out")"
  fi
  if ! itool iscsi-inq -i "$ini" "iscsi://127.0.0.1:$port/$chap_node/0"; then
    pass "CHAP: iscsi-inq without credentials is refused"
  else
    fail "CHAP: no credentials accepted: $(cat "$TMP/out")"
  fi
  if itool iscsi-ls -i "$ini" "iscsi://alice%$secret@127.0.0.1:$port" && grep -q "Target:$chap_node" "$TMP/out"; then
    pass "CHAP: iscsi-ls (discovery requires CHAP) with the right secret"
  else
    fail "CHAP discovery right secret: $(cat "$TMP/out" "$TMP/err")"
  fi
  if ! itool iscsi-ls -i "$ini" "iscsi://alice%wrongsecret1234@127.0.0.1:$port"; then
    pass "CHAP: iscsi-ls with a wrong secret is refused"
  else
    fail "CHAP discovery wrong secret accepted: $(cat "$TMP/out")"
  fi
fi

bad "iscsi_set_options once the target runs" iscsi_set_options '{"max_sessions": 8}' "before any other"
bad "a portal group tag 0" iscsi_create_portal_group '{"tag": 0, "portals": [{"host": "127.0.0.1", "port": "0"}]}' "tag"
bad "a portal group twice" iscsi_create_portal_group '{"tag": 1, "portals": [{"host": "127.0.0.1", "port": "0"}]}' "exists"
bad "a portal on no port" iscsi_create_portal_group '{"tag": 5, "portals": [{"host": "127.0.0.1", "port": "x"}]}' "port"
bad "a portal already bound" iscsi_create_portal_group '{"tag": 5, "portals": [{"host": "127.0.0.1", "port": "'$port'"}]}' "."
bad "an initiator group without netmasks" iscsi_create_initiator_group '{"tag": 6, "initiators": ["ANY"]}' "netmasks"
bad "a bad netmask" iscsi_create_initiator_group '{"tag": 6, "initiators": ["ANY"], "netmasks": ["300.1.1.1/8"]}' "300"
bad "a node on a missing bdev" iscsi_create_target_node \
  '{"name": "x", "luns": [{"bdev_name": "nope", "lun_id": 0}], "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 2}]}' "nope"
bad "a node mapping a missing group" iscsi_create_target_node \
  '{"name": "x", "luns": [{"bdev_name": "Malloc0", "lun_id": 0}], "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 9}]}' "9"
bad "a node twice" iscsi_create_target_node \
  '{"name": "disk0", "luns": [{"bdev_name": "Malloc0", "lun_id": 0}], "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 2}]}' "exists"
bad "an unknown parameter" iscsi_create_target_node '{"name": "y", "lun": [], "pg_ig_maps": []}' "lun"
bad "a taken LUN" iscsi_target_node_add_lun '{"name": "'$node'", "bdev_name": "Malloc1", "lun_id": 1}' "1"
bad "deleting a mapped portal group" iscsi_delete_portal_group '{"tag": 1}' "."
bad "deleting an auth group in use" iscsi_delete_auth_group '{"tag": 3}' "."
bad "a short CHAP secret" iscsi_create_auth_group '{"tag": 7, "secrets": [{"user": "bob", "secret": "short"}]}' "."
bad "deleting a node not there" iscsi_delete_target_node '{"name": "nothere"}' "nothere"
check_state "unchanged after the bad calls"
if rpc spdk_get_version; then pass "the daemon still answers"; else fail "daemon gone: $(cat "$TMP/server.err")"; fi

# Maps and initiators changed and changed back; a third node made and deleted.
if rpc iscsi_create_initiator_group '{"tag": 4, "initiators": ["iqn.2026-12.io.sluice:other"], "netmasks": ["ANY"]}' &&
   rpc iscsi_initiator_group_add_initiators '{"tag": 4, "initiators": ["iqn.2026-12.io.sluice:third"]}' &&
   rpc iscsi_initiator_group_remove_initiators '{"tag": 4, "initiators": ["iqn.2026-12.io.sluice:other"]}' &&
   rpc iscsi_target_node_add_pg_ig_maps '{"name": "'$node'", "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 4}]}' &&
   rpc iscsi_target_node_remove_pg_ig_maps '{"name": "'$node'", "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 4}]}' &&
   rpc iscsi_get_initiator_groups && [[ $(json '[g["initiators"] for g in d if g["tag"] == 4]') == "[['iqn.2026-12.io.sluice:third']]" ]] &&
   rpc iscsi_delete_initiator_group '{"tag": 4}' &&
   rpc iscsi_create_target_node '{"name": "tmp", "luns": [{"bdev_name": "Malloc1", "lun_id": 0}], "pg_ig_maps": []}' &&
   rpc iscsi_delete_target_node '{"name": "tmp"}' && rpc iscsi_get_target_nodes && [[ $(json 'len(d)') == 2 ]]; then
  pass "initiators and maps added and removed; a node made and deleted"
else
  fail "changes: $(cat "$TMP/out" "$TMP/err")"
fi
check_state "after the changes undone"

# save_config, then a restart from it shows the same target.
if rpc save_config && cp "$TMP/out" "$TMP/saved.json" && python3 - "$TMP/saved.json" <<'PY'
import json, sys
cfg = {s["subsystem"]: s["config"] for s in json.load(open(sys.argv[1]))["subsystems"]}
methods = [c["method"] for c in cfg["iscsi"]]
assert methods == ["iscsi_set_options", "iscsi_create_portal_group", "iscsi_create_initiator_group",
                   "iscsi_create_auth_group", "iscsi_set_discovery_auth", "iscsi_create_target_node",
                   "iscsi_create_target_node"], methods
PY
then
  pass "save_config: options, groups, discovery auth, then nodes"
else
  fail "save_config: $(cat "$TMP/out" "$TMP/err")"
fi
for m in iscsi_get_options iscsi_get_auth_groups iscsi_get_target_nodes; do rpc $m && cp "$TMP/out" "$TMP/before-$m.json"; done
serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "stop: rc $RC killed $KILLED"; fi
if serve_start "$TMP/rpc.sock" "$TMP/saved.json"; then
  check_state "after a restart from the saved config"
  for m in iscsi_get_options iscsi_get_auth_groups iscsi_get_target_nodes; do
    if rpc $m && cmp -s "$TMP/out" "$TMP/before-$m.json"; then pass "$m: the same after the restart"; else fail "$m after restart: $(cat "$TMP/out" "$TMP/err")"; fi
  done
  if [[ $tools -eq 1 ]]; then
    if itool iscsi-readcapacity16 -s -i "$ini" "iscsi://127.0.0.1:$port/$node/0" && [[ $(cat "$TMP/out") == $((8192 * 512)) ]]; then
      pass "after the restart: iscsi-readcapacity16 of LUN 0"
    else
      fail "after restart readcapacity: $(cat "$TMP/out" "$TMP/err")"
    fi
  fi
else
  fail "restart from the saved config: $(cat "$TMP/server.err")"
fi
serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "stops cleanly again"; else fail "second stop: rc $RC killed $KILLED"; fi
finish
