#!/usr/bin/env bash
# The iSCSI guest lane: `sluice serve` exports two 64 MiB malloc LUNs over iSCSI on 127.0.0.1
# (an ephemeral port), one open and one behind mutual CHAP with header and data digests
# required, and a TCG guest (scripts/guest/, a virtio NIC on QEMU's user network) runs the
# Linux kernel's initiator (iscsi_tcp with open-iscsi's iscsid and iscsiadm) against it through
# 10.0.2.2: iscsi_guest_inside.sh (discovery, login, fio verify, ext4 copy and fsck, CHAP right
# and wrong, logout). The guest's exit code, its fio reports (I/Os done, no errors), the
# daemon's view of the sessions and its clean stop decide the result.
#
# Usage: iscsi_guest_test.sh path/to/sluice
# Environment: ISCSI_GUEST_TIMEOUT (s, default 300), ISCSI_GUEST_LOG (keep the console log there).
# Exit 0 pass, 1 fail, 77 skip: only when qemu, fio or open-iscsi is missing or the kernel
# package cannot be fetched.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=${1:?usage: $0 path/to/sluice}
start=$SECONDS

guest_kernel fio iscsiadm iscsid

make_tmp iscsi-guest
base=iqn.2026-12.io.sluice
open_iqn=$base:guest-open
chap_iqn=$base:guest-chap
initiator=iqn.2026-12.io.sluice:guest-initiator
user=guest secret=guestsecret0123 muser=target msecret=targetsecret456
size=$((64 << 20))
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# QEMU's user network connects to the host's loopback from 127.0.0.1, so the initiator group
# allows exactly that address.
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": $((size / 512)), "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc1", "num_blocks": $((size / 512)), "block_size": 512}}]},
  {"subsystem": "iscsi", "config": [
    {"method": "iscsi_set_options", "params": {"node_base": "$base"}},
    {"method": "iscsi_create_portal_group", "params": {"tag": 1, "portals": [{"host": "127.0.0.1", "port": "$port"}]}},
    {"method": "iscsi_create_initiator_group", "params": {"tag": 1, "initiators": ["$initiator"], "netmasks": ["127.0.0.1/32"]}},
    {"method": "iscsi_create_auth_group", "params": {"tag": 1,
      "secrets": [{"user": "$user", "secret": "$secret", "muser": "$muser", "msecret": "$msecret"}]}},
    {"method": "iscsi_create_target_node", "params": {"name": "guest-open", "luns": [{"bdev_name": "Malloc0", "lun_id": 0}],
      "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 1}], "queue_depth": 64, "disable_chap": true}},
    {"method": "iscsi_create_target_node", "params": {"name": "guest-chap", "luns": [{"bdev_name": "Malloc1", "lun_id": 0}],
      "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 1}], "queue_depth": 64, "require_chap": true, "mutual_chap": true,
      "chap_group": 1, "header_digest": true, "data_digest": true}}]}]}
JSON
if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
pass "sluice serve exports $open_iqn and $chap_iqn on 127.0.0.1:$port"

if ! "$GUEST_DIR/make-initramfs.sh" --kernel-dir "$KDIR" --out "$TMP/initrd.cpio" \
    --script "$here/iscsi_guest_inside.sh" \
    --module virtio_pci --module virtio_net --module iscsi_tcp --module sd_mod --module ext4 --module crc32c_generic \
    --bin "$(command -v iscsiadm)" --bin "$(command -v iscsid)" --bin "$(command -v fio)" \
    --bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
    --env "PORT=$port" --env "OPEN_IQN=$open_iqn" --env "CHAP_IQN=$chap_iqn" --env "SIZE_SECTORS=$((size / 512))" \
    --env "CHAP_USER=$user" --env "CHAP_SECRET=$secret" --env "CHAP_MUSER=$muser" --env "CHAP_MSECRET=$msecret" \
    --env "INITIATOR=$initiator"; then
  fail "make-initramfs.sh"
  finish
fi

log=${ISCSI_GUEST_LOG:-$TMP/console.log}
guest_start --initrd "$TMP/initrd.cpio" --net \
  --log "$log" --timeout "${ISCSI_GUEST_TIMEOUT:-300}" --ns 16M

# While the guest is logged in to the open node, the daemon lists its session.
session_listed() {
  serve_rpc iscsi_get_connections &&
    python3 -c "import json,sys; c = json.load(open(sys.argv[1])); sys.exit(0 if any(x.get('target_node_name') == sys.argv[2] and x.get('initiator_name') == sys.argv[3] for x in c) else 1)" \
      "$TMP/out" "$open_iqn" "$initiator" 2>/dev/null
}
guest_watch "${ISCSI_GUEST_TIMEOUT:-300}" session_listed
guest_wait
guest_rc=$?
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed"; else fail "guest script exit $guest_rc"; fi
if [[ $SEEN -eq 1 ]]; then pass "iscsi_get_connections showed the guest's session to $open_iqn"
else fail "iscsi_get_connections never showed the guest's session: $(cat "$TMP/out")"; fi
if serve_rpc iscsi_get_connections && [[ $(json 'len(d)') == 0 ]]; then pass "no connections left after the guest logged out"
else fail "connections left: $(cat "$TMP/out" "$TMP/err")"; fi

# The fio reports the guest printed: I/Os done, no errors, every one there. No kernel trouble.
if python3 "$here/guest_reports.py" "$log" iscsi-verify-4k iscsi-verify-128k iscsi-verify-digests; then pass "fio reports"; else fail "fio reports"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "iscsi guest lane: $((SECONDS - start)) s"
finish
