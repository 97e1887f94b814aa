# shellcheck shell=dash disable=SC1091
# The guest half of iscsi_guest_test.sh (busybox sh in a TCG guest with a virtio NIC on QEMU's
# user network): the Linux kernel's iSCSI initiator (iscsi_tcp, driven by open-iscsi's iscsid
# and iscsiadm) against `sluice serve` on the host, reached at 10.0.2.2 (the host's 127.0.0.1).
#
#   iscsiadm discovery (SendTargets) lists both nodes; the target advertises its own portal,
#     127.0.0.1, which from in here is the guest itself: the node records are made for
#     10.0.2.2, as for any target behind NAT
#   the open node: login, the LUN's size, fio write+verify at 4 KiB and 128 KiB, mkfs.ext4, a
#     file copied in and read back after a remount, fsck, logout (the session gone)
#   the CHAP node (mutual CHAP, header and data digests required): a wrong secret is refused,
#     a target answering for another secret is refused by the initiator, the right pair logs
#     in with both digests; fio verify; logout
#
# Environment (make-initramfs --env): PORT, OPEN_IQN, CHAP_IQN, SIZE_SECTORS (each LUN,
# 512-byte), CHAP_USER, CHAP_SECRET, CHAP_MUSER, CHAP_MSECRET, INITIATOR.
. /guest/lib.sh
PORTAL=10.0.2.2:$PORT

# crc32c: the digests' and ext4's checksum (busybox modprobe does not follow soft dependencies).
modprobe crc32c_generic && modprobe virtio_pci && modprobe virtio_net && modprobe iscsi_tcp &&
  modprobe sd_mod && modprobe ext4 || { fail "modprobe"; exit 1; }
wait_for /sys/class/net/eth0 20 || { fail "no eth0"; exit 1; }
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || { fail "eth0 up"; exit 1; }
pass "network up: 10.0.2.15, the host at $PORTAL"

# open-iscsi's files: its name, its defaults for new node records (one login attempt: a refused
# login must fail at once), its lock directory (Debian's keeps its records in /etc/iscsi).
# iscsid serves only root, which it looks up by name: the initramfs needs an /etc/passwd.
mkdir -p /etc/iscsi /run/lock/iscsi
echo "root:x:0:0:root:/:/bin/sh" >/etc/passwd
echo "InitiatorName=$INITIATOR" >/etc/iscsi/initiatorname.iscsi
cat >/etc/iscsi/iscsid.conf <<'CONF'
iscsid.startup = /bin/false
node.startup = manual
node.session.initial_login_retry_max = 1
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
node.conn[0].timeo.noop_out_interval = 5
node.conn[0].timeo.noop_out_timeout = 5
node.session.timeo.replacement_timeout = 20
node.session.cmds_max = 128
node.session.queue_depth = 32
node.session.iscsi.InitialR2T = No
node.session.iscsi.ImmediateData = Yes
node.session.iscsi.FirstBurstLength = 262144
node.session.iscsi.MaxBurstLength = 16776192
node.conn[0].iscsi.MaxRecvDataSegmentLength = 262144
discovery.sendtargets.iscsi.MaxRecvDataSegmentLength = 32768
CONF
# In a session of its own: on SIGTERM iscsid signals its whole process group.
setsid iscsid -f >/tmp/iscsid.log 2>&1 &
ISCSID=$!
i=0
until grep -q "@ISCSIADM_ABSTRACT_NAMESPACE" /proc/net/unix; do  # its control socket
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 $ISCSID 2>/dev/null; then fail "iscsid did not come up: $(cat /tmp/iscsid.log)"; exit 1; fi
  sleep 0.1
done
pass "iscsid up"

if iscsiadm -m discovery -t sendtargets -p "$PORTAL" >/tmp/disc 2>&1 &&
   grep -q "127.0.0.1:$PORT,1 $OPEN_IQN\$" /tmp/disc && grep -q "127.0.0.1:$PORT,1 $CHAP_IQN\$" /tmp/disc; then
  pass "iscsiadm discovery lists both nodes at 127.0.0.1:$PORT"
else
  fail "iscsiadm discovery: $(cat /tmp/disc)"
fi

node() {  # IQN ARGS...: iscsiadm on IQN's node record at 10.0.2.2
  local iqn=$1; shift
  iscsiadm -m node -T "$iqn" -p "$PORTAL" "$@"
}
set_key() {  # IQN KEY VALUE
  node "$1" -o update -n "$2" -v "$3" >/dev/null || fail "iscsiadm: setting $2 on $1"
}

# disk_of IQN: the sdX the session to IQN attached, waited for up to 20 s; empty when none.
disk_of() {
  local i=0 d
  while [ $i -lt 200 ]; do
    d=$(iscsiadm -m session -P 3 2>/dev/null | awk -v t="$1" '
      $1 == "Target:" { mine = ($2 == t) }
      mine && /Attached scsi disk/ { for (i = 1; i <= NF; i++) if ($i == "disk") { print $(i + 1); exit } }')
    if [ -n "$d" ] && [ -e "/dev/$d" ]; then echo "$d"; return 0; fi
    i=$((i + 1)); sleep 0.1
  done
  return 1
}

# login IQN: logs in, waits for the disk and checks its size; sets DISK (sdX) and DEV.
login() {
  if ! node "$1" --login >/tmp/login 2>&1; then fail "login to $1: $(cat /tmp/login)"; return 1; fi
  DISK=$(disk_of "$1") || { fail "login to $1: no disk appeared: $(iscsiadm -m session -P 3 2>&1 | tail -20)"; return 1; }
  DEV=/dev/$DISK
  local size
  size=$(cat "/sys/block/$DISK/size")
  if [ "$size" = "$SIZE_SECTORS" ]; then pass "login to $1: $DEV, $size sectors"
  else fail "login to $1: $DEV has $size sectors, want $SIZE_SECTORS"; return 1; fi
}

logout() {
  if node "$1" --logout >/tmp/logout 2>&1 && ! iscsiadm -m session 2>/dev/null | grep -q "$1"; then
    pass "logout from $1"
  else
    fail "logout from $1: $(cat /tmp/logout)"
  fi
}

# verify NAME BS: fio writes 8 MiB at random with block size BS and verifies it (crc32c).
verify() {
  fio_json "$1" --name="$1" --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite --bs="$2" \
    --size=8M --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0
}

# The open node.
node "$OPEN_IQN" -o new >/dev/null 2>&1 || fail "node record for $OPEN_IQN"
if login "$OPEN_IQN"; then
  verify iscsi-verify-4k 4k
  verify iscsi-verify-128k 128k
  run_step "mkfs.ext4 $DEV" mkfs.ext4 -q -F "$DEV"
  mkdir -p /mnt
  dd if=/dev/urandom of=/tmp/file bs=1M count=6 2>/dev/null
  if mount -t ext4 "$DEV" /mnt && cp /tmp/file /mnt/file && sync && umount /mnt &&
     mount -t ext4 "$DEV" /mnt && cmp /tmp/file /mnt/file && umount /mnt; then
    pass "ext4: a 6 MiB file copied in reads back the same after a remount"
  else
    fail "ext4 copy"; umount /mnt 2>/dev/null
  fi
  run_step "e2fsck -fn $DEV (clean)" e2fsck -fn "$DEV"
  logout "$OPEN_IQN"
fi

# The CHAP node: mutual CHAP and both digests.
node "$CHAP_IQN" -o new >/dev/null 2>&1 || fail "node record for $CHAP_IQN"
set_key "$CHAP_IQN" node.session.auth.authmethod CHAP
set_key "$CHAP_IQN" node.session.auth.username "$CHAP_USER"
set_key "$CHAP_IQN" node.session.auth.username_in "$CHAP_MUSER"
set_key "$CHAP_IQN" "node.conn[0].iscsi.HeaderDigest" CRC32C
set_key "$CHAP_IQN" "node.conn[0].iscsi.DataDigest" CRC32C

# refused DESCRIPTION CODE PATTERN: a login that must fail with iscsiadm's exit code CODE and
# PATTERN (case-insensitive) in the output of iscsiadm and iscsid from then on. 24 is
# ISCSI_ERR_LOGIN_AUTH_FAILED (the target refused the credentials); 19 a non-retryable
# failure on the initiator's side (iscsid refusing the target's mutual CHAP answer).
refused() {
  local seen rc
  seen=$(wc -l </tmp/iscsid.log)
  node "$CHAP_IQN" --login >/tmp/login 2>&1
  rc=$?
  tail -n +$((seen + 1)) /tmp/iscsid.log >>/tmp/login
  if [ $rc -eq "$2" ] && grep -qi "$3" /tmp/login; then
    pass "$1: refused ($(grep -i "$3" /tmp/login | head -1 | sed 's/^iscsi[a-z]*: //'))"
  else
    fail "$1: iscsiadm exit $rc (want $2 and '$3'): $(cat /tmp/login)"
    [ $rc -eq 0 ] && node "$CHAP_IQN" --logout >/dev/null 2>&1
  fi
}
set_key "$CHAP_IQN" node.session.auth.password wrongsecret0123
set_key "$CHAP_IQN" node.session.auth.password_in "$CHAP_MSECRET"
refused "login with a wrong CHAP secret" 24 "authorization failure"
set_key "$CHAP_IQN" node.session.auth.password "$CHAP_SECRET"
set_key "$CHAP_IQN" node.session.auth.password_in wrongmsecret0123
refused "login where the target's mutual CHAP answer is for another secret" 19 "auth"
set_key "$CHAP_IQN" node.session.auth.password_in "$CHAP_MSECRET"
if login "$CHAP_IQN"; then
  if iscsiadm -m session -P 2 2>/dev/null | grep -q "HeaderDigest: CRC32C" &&
     iscsiadm -m session -P 2 2>/dev/null | grep -q "DataDigest: CRC32C"; then
    pass "mutual CHAP login with header and data digests (CRC32C)"
  else
    fail "digests not negotiated: $(iscsiadm -m session -P 2 2>&1 | grep -i digest)"
  fi
  verify iscsi-verify-digests 16k
  logout "$CHAP_IQN"
fi

kill "$ISCSID" 2>/dev/null
if dmesg | grep -E "BUG:|Oops|WARNING:|Call Trace" >/tmp/bad; then fail "guest kernel: $(head -5 /tmp/bad)"; fi
echo "guest: $FAILS failed"
[ "$FAILS" -eq 0 ]
