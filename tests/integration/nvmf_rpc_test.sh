#!/usr/bin/env bash
# `sluice serve` with the NVMe-oF target's RPC methods (SPDK's nvmf_* names): a config that
# makes the TCP transport, a subsystem with a namespace and a listener on 127.0.0.1 (an
# ephemeral port); then the listings, a second daemon's NVMe/TCP initiator attaching that
# subsystem and re-exporting it over NBD, bad calls (each one error, the daemon unchanged),
# hosts, save_config and a restart from it, and deleting the subsystem closing its port. The data
# path is tested by nvmf_test (a host on the PDU codec) and the guest lane (Linux's initiator).
#   nvmf_rpc_test.sh SLUICE
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=$1

make_tmp nvmf-rpc
nqn=nqn.2026-12.io.sluice:disk
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
listen='{"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "'$port'"}'
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 32768, "block_size": 512}}]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "TCP", "max_queue_depth": 64, "num_shared_buffers": 4095}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "$nqn", "serial_number": "SL0001", "model_number": "Sluice test"}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$nqn", "namespace": {"bdev_name": "Malloc0", "nsid": 3}}},
    {"method": "nvmf_subsystem_add_host", "params": {"nqn": "$nqn", "host": "nqn.2026-12.io.sluice:host-a"}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "$nqn", "listen_address": $listen}}]}]}
JSON
rpc() { serve_rpc "$@"; }
port_open() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=2).close()" 2>/dev/null; }

if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
pass "sluice serve up with an NVMe/TCP subsystem from its config"

check_subsystems() {  # WHAT: the listing shows the config's subsystem
  if rpc nvmf_get_subsystems && python3 - "$TMP/out" "$nqn" "$port" <<'PY'
import json, sys
subs = {s["nqn"]: s for s in json.load(open(sys.argv[1]))}
assert "nqn.2014-08.org.nvmexpress.discovery" in subs, subs
s = subs[sys.argv[2]]
assert s["serial_number"] == "SL0001" and s["model_number"] == "Sluice test", s
assert s["namespaces"] == [{"nsid": 3, "bdev_name": "Malloc0", "name": "Malloc0"}], s["namespaces"]
assert s["hosts"] == [{"nqn": "nqn.2026-12.io.sluice:host-a"}] and not s["allow_any_host"], s
assert s["listen_addresses"] == [{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": sys.argv[3]}], s
PY
  then pass "nvmf_get_subsystems: $1"; else fail "nvmf_get_subsystems $1: $(cat "$TMP/out" "$TMP/err")"; fi
}
check_subsystems "the subsystem, its namespace, host and listener"
if rpc nvmf_get_transports && [[ $(json 'd[0]["trtype"], d[0]["max_queue_depth"]') == "TCP 64" ]]; then
  pass "nvmf_get_transports"
else
  fail "nvmf_get_transports: $(cat "$TMP/out" "$TMP/err")"
fi
if port_open; then pass "127.0.0.1:$port accepts connections"; else fail "nothing listens on $port"; fi

# `sluice nvme discover`: the discovery log lists the subsystem to the host allowed on it.
if timeout 30 "$SLUICE" nvme discover "127.0.0.1:$port" --hostnqn nqn.2026-12.io.sluice:host-a --json >"$TMP/out" 2>"$TMP/err" &&
   [[ $(json '[(e["subnqn"], e["traddr"], e["trsvcid"], e["trtype"]) for e in d]') == "[('$nqn', '127.0.0.1', '$port', 'tcp')]" ]]; then
  pass "sluice nvme discover lists the subsystem"
else
  fail "discover: $(cat "$TMP/out" "$TMP/err")"
fi
if ! timeout 30 "$SLUICE" nvme discover "127.0.0.1:notaport" >"$TMP/out" 2>"$TMP/err" && grep -q "not a TCP port" "$TMP/err"; then
  pass "sluice nvme discover: a bad address is a usage error"
else
  fail "discover bad address: $(cat "$TMP/out" "$TMP/err")"
fi

# Sluice's NVMe/TCP initiator: a second daemon attaches the subsystem the first serves and
# re-exports its namespace over NBD; qemu-img writes through both hops and compares. (A
# second process: a queue's Connect blocks its reactor for a round trip, so a daemon does not
# attach a subsystem its own reactors serve.)
rpc2() { timeout 60 "$SLUICE" rpc -s "$TMP/rpc2.sock" "$@" >"$TMP/out" 2>"$TMP/err"; }
bg_start "$SLUICE" serve -m 1 -r "$TMP/rpc2.sock" >"$TMP/server2.out" 2>"$TMP/server2.err"
second=$BG_PID
for _ in $(seq 1 200); do rpc2 spdk_get_version && break; sleep 0.1; done
attach='{"name": "Remote0", "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "'$port'",
         "subnqn": "'$nqn'", "hostnqn": "nqn.2026-12.io.sluice:host-a"}'
if rpc2 bdev_nvme_attach_controller "$attach" && [[ $(json '",".join(d)') == Remote0n3 ]] &&
   rpc2 bdev_get_bdevs '{"name": "Remote0n3"}' && [[ $(json 'str(d[0]["num_blocks"])') == 32768 ]]; then
  pass "bdev_nvme_attach_controller over TCP: namespace 3 as Remote0n3 in a second daemon"
else
  fail "TCP attach: $(cat "$TMP/out" "$TMP/err")"
fi
if ! rpc2 bdev_nvme_attach_controller '{"name": "Remote1", "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": "'$port'",
       "subnqn": "'$nqn'", "hostnqn": "nqn.2026-12.io.sluice:stranger"}' && grep -q "not allowed" "$TMP/err"; then
  pass "refused over TCP: a host the subsystem does not allow"
else
  fail "stranger host: $(cat "$TMP/out" "$TMP/err")"
fi
if command -v qemu-img >/dev/null; then
  head -c $((4 << 20)) /dev/urandom >"$TMP/img.raw"
  if rpc2 nbd_server_start '{"socket": "'"$TMP"'/nbd.sock"}' && rpc2 nbd_export_add '{"name": "remote", "bdev_name": "Remote0n3"}' &&
     timeout 120 qemu-img convert -n -f raw -O raw "$TMP/img.raw" "nbd+unix:///remote?socket=$TMP/nbd.sock" 2>"$TMP/err" &&
     timeout 120 qemu-img compare -f raw -F raw "$TMP/img.raw" "nbd+unix:///remote?socket=$TMP/nbd.sock" >/dev/null 2>"$TMP/err"; then
    pass "the TCP-attached namespace re-exported over NBD: written and read back by qemu-img"
  else
    fail "re-export: $(cat "$TMP/err")"
  fi
fi
if rpc2 bdev_nvme_detach_controller '{"name": "Remote0"}' && ! rpc2 bdev_get_bdevs '{"name": "Remote0n3"}'; then
  pass "bdev_nvme_detach_controller: Remote0n3 is gone"
else
  fail "detach: $(cat "$TMP/out" "$TMP/err")"
fi
kill -TERM "$second" 2>/dev/null
wait_or_kill "$second" 20
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "the second daemon stops cleanly"; else fail "second daemon: rc $RC killed $KILLED"; fi

bad() {  # NAME METHOD PARAMS PATTERN
  if ! rpc "$2" "$3" && grep -q -- "$4" "$TMP/err"; then pass "refused: $1"; else fail "$1: $(cat "$TMP/out" "$TMP/err")"; fi
}
bad "a second transport" nvmf_create_transport '{"trtype": "TCP"}' "exists"
bad "RDMA" nvmf_create_transport '{"trtype": "RDMA"}' "only TCP"
bad "a malformed NQN" nvmf_create_subsystem '{"nqn": "not-an-nqn"}' "nqn"
bad "a subsystem twice" nvmf_create_subsystem '{"nqn": "'$nqn'"}' "exists"
bad "a namespace on a missing bdev" nvmf_subsystem_add_ns '{"nqn": "'$nqn'", "namespace": {"bdev_name": "nope"}}' "nope"
bad "a taken NSID" nvmf_subsystem_add_ns '{"nqn": "'$nqn'", "namespace": {"bdev_name": "Malloc0", "nsid": 3}}' "3"
bad "a listener on no port" nvmf_subsystem_add_listener '{"nqn": "'$nqn'", "listen_address": {"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": "x"}}' "trsvcid"
bad "a listener for a missing subsystem" nvmf_subsystem_add_listener '{"nqn": "nqn.2026-12.io.sluice:nope", "listen_address": '"$listen"'}' "nope"
bad "removing a host not there" nvmf_subsystem_remove_host '{"nqn": "'$nqn'", "host": "nqn.2026-12.io.sluice:zz"}' "zz"
bad "an unknown parameter" nvmf_create_subsystem '{"nqn": "nqn.2026-12.io.sluice:x", "serial": "1"}' "serial"
bad "the discovery subsystem" nvmf_delete_subsystem '{"nqn": "nqn.2014-08.org.nvmexpress.discovery"}' "discovery"
check_subsystems "unchanged after the bad calls"

# A second subsystem with its own host rules, then gone again.
if rpc nvmf_create_subsystem '{"nqn": "nqn.2026-12.io.sluice:two", "allow_any_host": true}' &&
   rpc nvmf_subsystem_allow_any_host '{"nqn": "nqn.2026-12.io.sluice:two", "allow_any_host": false}' &&
   rpc nvmf_get_subsystems '{"nqn": "nqn.2026-12.io.sluice:two"}' && [[ $(json 'd[0]["allow_any_host"]') == False ]] &&
   rpc nvmf_delete_subsystem '{"nqn": "nqn.2026-12.io.sluice:two"}'; then
  pass "a second subsystem: made, closed to any host, deleted"
else
  fail "second subsystem: $(cat "$TMP/out" "$TMP/err")"
fi

# save_config, then a restart from it shows the same target.
if rpc save_config && cp "$TMP/out" "$TMP/saved.json" && python3 - "$TMP/saved.json" <<'PY'
import json, sys
cfg = {s["subsystem"]: s["config"] for s in json.load(open(sys.argv[1]))["subsystems"]}
methods = [c["method"] for c in cfg["nvmf"]]
assert methods == ["nvmf_create_transport", "nvmf_create_subsystem", "nvmf_subsystem_add_host",
                   "nvmf_subsystem_add_ns", "nvmf_subsystem_add_listener"], methods
assert cfg["nvmf"][0]["params"]["max_queue_depth"] == 64, cfg["nvmf"][0]
PY
then
  pass "save_config lists the transport, subsystem, host, namespace and listener"
else
  fail "save_config: $(cat "$TMP/out" "$TMP/err")"
fi
serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "stop: rc $RC killed $KILLED"; fi
if serve_start "$TMP/rpc.sock" "$TMP/saved.json"; then
  check_subsystems "after a restart from the saved config"
else
  fail "restart from the saved config: $(cat "$TMP/server.err")"
fi

# Deleting the subsystem closes the port no other subsystem lists.
if rpc nvmf_delete_subsystem '{"nqn": "'$nqn'"}' && ! port_open; then
  pass "deleting the subsystem closes 127.0.0.1:$port"
else
  fail "after nvmf_delete_subsystem: $(cat "$TMP/err")"
fi
serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "stops cleanly again"; else fail "second stop: rc $RC killed $KILLED"; fi
finish
