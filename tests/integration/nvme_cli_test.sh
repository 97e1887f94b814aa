#!/usr/bin/env bash
# End-to-end test of `sluice nvme` and `sluice setup` without NVMe hardware: sluice_model_cli
# (the CLI with the software controller model linked in) puts a model at BDF when
# SLUICE_NVME_MODEL=BDF, the shipped sluice must not, and `setup` works
# on a fake sysfs/procfs tree. Checks identify/smart-log/perf output (text and JSON), perf and
# verify through the nvme:BDF[/NSID] bdev scheme, clear errors for bad addresses, and that
# setup binds with driver_override + drivers_probe and refuses a controller with a mounted
# namespace. The real-device lane is nvme_guest_test.sh.
# Usage: nvme_cli_test.sh path/to/sluice_model_cli path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice_model_cli path/to/sluice}
SHIPPED=${2:?usage: $0 path/to/sluice_model_cli path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp nvme_cli
BDF=0000:fe:00.0
export SLUICE_NVME_MODEL=$BDF

run() {
  timeout 60 "$SLUICE" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
}
expect() {
  local name=$1 code=$2; shift 2
  run "$@"
  if [[ $RC -ne $code ]]; then fail "$name: exit $RC, want $code; stderr: $(cat "$TMP/err"); stdout: $(tail -5 "$TMP/out")"; return 1; fi
  if [[ $code -ne 0 ]] && ! grep -q '^sluice ' "$TMP/err"; then fail "$name: no 'sluice ...' line on stderr: $(cat "$TMP/err")"; return 1; fi
  pass "$name"
}
out_has() { grep -q -- "$1" "$TMP/out" || fail "output lacks '$1': $(head -20 "$TMP/out")"; }
err_has() { grep -q -- "$1" "$TMP/err" || fail "stderr lacks '$1': $(cat "$TMP/err")"; }
json() { python3 -c "import json,sys; d=json.load(open('$TMP/out')); print($1)"; }

# ---- the driver on the model ----
expect "identify" 0 nvme identify $BDF && { out_has "SLUICEMODEL0001"; out_has "namespace 2: 16384 blocks of 4096 B"; }
expect "identify --json" 0 nvme identify fe:00.0 --json &&
  [[ $(json "d['serial'], len(d['namespaces']), d['namespaces'][1]['spec']") == "SLUICEMODEL0001 2 nvme:$BDF/2" ]] ||
  fail "identify JSON: $(head -c 300 "$TMP/out")"
expect "smart-log" 0 nvme smart-log $BDF && out_has "unsafe shutdowns    0"
expect "smart-log --json" 0 nvme smart-log $BDF --json && [[ $(json "d['temperature_celsius']") == 40 ]] || fail "smart JSON"
expect "perf randread" 0 nvme perf $BDF -q 16 -t 0.5 && out_has "IOPS" && out_has "CPU"
expect "perf randrw ns2 --json" 0 nvme perf $BDF/2 -w randrw -o 8k -q 4 -t 0.5 --json &&
  [[ $(json "d['ios'] > 0 and d['errors'] == 0 and d['nsid'] == 2") == True ]] || fail "perf JSON: $(head -c 300 "$TMP/out")"
expect "perf: io size not a block multiple" 2 nvme perf $BDF/2 -o 512 -t 0.2 && err_has "not a multiple of the block size 4096"
expect "identify: bad address" 2 nvme identify 12:34 && err_has "is not a PCI address"
expect "identify: absent device" 1 nvme identify 0000:77:00.0 && err_has "no PCI function 0000:77:00.0"

expect "perf: a namespace that is not a number" 2 nvme perf $BDF/1abc -t 0.2 && err_has "not a whole number"
SLUICE=$SHIPPED expect "the shipped sluice has no model" 1 nvme identify $BDF && err_has "no PCI function $BDF"

# ---- the bdev scheme through sluice perf ----
expect "sluice perf verify on nvme:BDF/1" 0 perf -T nvme:$BDF/1 -w verify -q 8 -t 0.5
expect "sluice perf on nvme:BDF/2 --json" 0 perf -T nvme:$BDF/2 -w randread -q 4 -t 0.5 --json
expect "sluice perf on a missing namespace" 1 perf -T nvme:$BDF/5 -w randread -t 0.2 && err_has "no active namespace 5"

# ---- setup on a fake sysfs ----
SYS=$TMP/sys PROC=$TMP/proc
mkdir -p "$PROC/sys/vm" "$SYS/bus/pci/drivers/nvme" "$SYS/bus/pci/drivers/vfio-pci" "$SYS/bus/pci/drivers/uio_pci_generic"
echo 0 >"$PROC/sys/vm/nr_hugepages"
: >"$SYS/bus/pci/drivers_probe"
: >"$PROC/swaps"
add_dev() {  # BDF CLASS DRIVER [NAMESPACE-DIR]
  local d=$SYS/bus/pci/devices/$1
  mkdir -p "$d"
  echo "$2" >"$d/class"; echo 0x1b36 >"$d/vendor"; echo 0x0010 >"$d/device"; echo -1 >"$d/numa_node"
  : >"$d/driver_override"
  mkdir -p "$SYS/bus/pci/drivers/$3"; : >"$SYS/bus/pci/drivers/$3/unbind"
  ln -s "$SYS/bus/pci/drivers/$3" "$d/driver"
  if [[ -n ${4:-} ]]; then  # the namespace's directory under its controller, nvmeX
    local ctrl
    ctrl=$(sed -E 's/^(nvme[0-9]+).*/\1/' <<<"$4")
    mkdir -p "$d/nvme/$ctrl/$4/${4}p1"
  fi
}
add_dev 0000:00:04.0 0x010802 nvme nvme0n1
add_dev 0000:00:05.0 0x010802 nvme nvme1n1
add_dev 0000:00:02.0 0x030000 bochs-drm
add_dev 0000:00:06.0 0x010802 nvme nvme2c2n1  # native multipath: the head nvme2n1 holds the partitions
mkdir -p "$SYS/class/block/nvme2n1/nvme2n1p3"
printf '%s\n' "/dev/nvme1n1p1 /data ext4 rw 0 0" "/dev/nvme2n1p3 /srv xfs rw 0 0" >"$PROC/mounts"
S=(setup --sysfs-root "$SYS" --proc-root "$PROC")

expect "nvme list (fake sysfs)" 0 nvme --sysfs-root "$SYS" list && out_has "0000:00:04.0" && out_has "bind with"
expect "setup status" 0 "${S[@]}" status && out_has "in use: /dev/nvme1n1p1 is mounted on /data"
expect "setup bind refuses the mounted ones" 1 "${S[@]}" bind -d uio_pci_generic && err_has "0000:00:05.0: refusing" &&
  err_has "0000:00:06.0: refusing to unbind it: /dev/nvme2n1p3 is mounted on /srv"
[[ $(cat "$SYS/bus/pci/devices/0000:00:04.0/driver_override") == uio_pci_generic ]] || fail "driver_override of 00:04.0"
grep -q 0000:00:04.0 "$SYS/bus/pci/drivers/nvme/unbind" || fail "00:04.0 was not unbound"
grep -q 0000:00:04.0 "$SYS/bus/pci/drivers_probe" || fail "drivers_probe was not written"
[[ -s "$SYS/bus/pci/devices/0000:00:05.0/driver_override" ]] && fail "the mounted controller was touched"
expect "setup bind: not an NVMe device" 2 "${S[@]}" bind 0000:00:02.0 && err_has "is not an NVMe controller"
touch "$SYS/bus/pci/drivers/uio_pci_generic/unbind"
ln -sfn "$SYS/bus/pci/drivers/uio_pci_generic" "$SYS/bus/pci/devices/0000:00:04.0/driver"  # what the kernel would do
expect "setup bind: already bound" 0 "${S[@]}" bind 0000:00:04.0 -d uio_pci_generic && out_has "already bound"
expect "setup reset" 0 "${S[@]}" reset 0000:00:04.0 && out_has "kernel driver"
[[ $(cat "$SYS/bus/pci/devices/0000:00:04.0/driver_override") == "" ]] || fail "driver_override was not cleared"
grep -q 0000:00:04.0 "$SYS/bus/pci/drivers/uio_pci_generic/unbind" || fail "00:04.0 was not unbound from uio_pci_generic"
expect "setup hugepages" 0 "${S[@]}" hugepages 16 && [[ $(cat "$PROC/sys/vm/nr_hugepages") == 16 ]] || fail "nr_hugepages"

# ---- the daemon: bdev_nvme_attach_controller on the model, served over NBD ----
rpc_sock=$TMP/rpc.sock
bg_start "$SLUICE" serve -r "$rpc_sock" >"$TMP/serve.out" 2>"$TMP/serve.err"
daemon=$BG_PID
rpc() { timeout 60 "$SLUICE" rpc -s "$rpc_sock" "$@" >"$TMP/out" 2>"$TMP/err"; }
for _ in $(seq 1 200); do rpc spdk_get_version && break; sleep 0.1; done
if rpc bdev_nvme_attach_controller '{"name": "Nvme0", "trtype": "PCIe", "traddr": "'$BDF'"}' &&
   [[ $(json '",".join(d)') == Nvme0n1,Nvme0n2 ]]; then
  pass "bdev_nvme_attach_controller: one bdev per namespace"
else
  fail "attach: $(cat "$TMP/out" "$TMP/err")"
fi
rpc bdev_get_bdevs '{"name": "Nvme0n2"}' && [[ $(json 'str(d[0]["block_size"]) + "x" + str(d[0]["num_blocks"])') == 4096x16384 ]] &&
  pass "namespace 2: 16384 blocks of 4096 B" || fail "Nvme0n2: $(cat "$TMP/out")"
rpc bdev_nvme_attach_controller '{"name": "Nvme0", "trtype": "PCIe", "traddr": "'$BDF'"}' && fail "attached twice" ||
  pass "a second attach under the same name is refused"
rpc bdev_nvme_attach_controller '{"name": "Nvme1", "trtype": "TCP", "traddr": "127.0.0.1"}' && fail "TCP without a subsystem accepted" ||
  { grep -q "subnqn" "$TMP/err" && pass "trtype TCP without subnqn refused with a reason" || fail "TCP: $(cat "$TMP/err")"; }
rpc save_config && python3 -c "
import json; c = json.load(open('$TMP/out'))
bdev = [s for s in c['subsystems'] if s['subsystem'] == 'bdev'][0]['config']
assert [e['method'] for e in bdev] == ['bdev_nvme_attach_controller'], bdev" &&
  pass "save_config: one attach call for both namespaces" || fail "save_config: $(cat "$TMP/out")"
if command -v qemu-img >/dev/null; then
  head -c $((4 << 20)) /dev/urandom >"$TMP/img.raw"
  if rpc nbd_export_add '{"name": "ns2", "bdev_name": "Nvme0n2"}' && rpc nbd_server_start '{"socket": "'"$TMP"'/nbd.sock"}' &&
     timeout 120 qemu-img convert -n -f raw -O raw "$TMP/img.raw" "nbd+unix:///ns2?socket=$TMP/nbd.sock" 2>"$TMP/err" &&
     timeout 120 qemu-img compare -f raw -F raw "$TMP/img.raw" "nbd+unix:///ns2?socket=$TMP/nbd.sock" >/dev/null 2>"$TMP/err"; then
    pass "an NVMe namespace served over NBD: written and read back by qemu-img"
  else
    fail "nvme over nbd: $(cat "$TMP/err")"
  fi
fi
rpc bdev_nvme_detach_controller '{"name": "Nvme0"}' && ! rpc bdev_get_bdevs '{"name": "Nvme0n1"}' &&
  pass "bdev_nvme_detach_controller removes both" || fail "detach: $(cat "$TMP/out" "$TMP/err")"
rpc bdev_nvme_detach_controller '{"name": "Nvme0"}' && fail "detached twice" || pass "detaching an unknown controller is refused"
kill -TERM "$daemon"
wait_or_kill "$daemon" 20
[[ $KILLED -eq 0 && $RC -eq 0 ]] && pass "serve exits 0" || fail "serve: rc $RC killed $KILLED $(cat "$TMP/serve.err")"

echo "nvme_cli: $FAILS failure(s)"
[[ $FAILS -eq 0 ]]
