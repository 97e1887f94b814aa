# shellcheck shell=dash
# Helpers for guest scripts (busybox sh inside the initramfs; make-initramfs.sh installs this
# file as /guest/lib.sh). Source it: `. /guest/lib.sh`.
#
# Results go to the serial console: "ok ...", "FAIL ...", "skip ..." lines, and machine-readable
# "GUEST-JSON <name> <one-line json>" lines the host parses. Every wait is bounded.

FAILS=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
skip() { echo "skip $*"; }

# Seconds since boot, for timing steps without assuming a working `date +%N`.
now() { cut -d' ' -f1 /proc/uptime; }

# wait_for PATH SECONDS: until PATH exists; polls every 0.1 s.
wait_for() {
  local i=0 limit=$(($2 * 10))
  while [ ! -e "$1" ]; do
    i=$((i + 1))
    [ $i -gt $limit ] && return 1
    sleep 0.1
  done
}

# nvme_bdfs: the BDFs of every NVMe-class PCI function (class 0x010802), one a line.
nvme_bdfs() {
  local d
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/class")" = 0x010802 ] && basename "$d"
  done
}

# driver_of BDF: the name of the driver bound to BDF, empty when none.
driver_of() {
  [ -e "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
}

# iommu_group_of BDF: the IOMMU group number of BDF, empty when the device has none.
iommu_group_of() {
  [ -e "/sys/bus/pci/devices/$1/iommu_group" ] && basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
}

# bind BDF DRIVER: moves BDF to DRIVER (driver_override + drivers_probe, the way that works for
# drivers without the device's id in their table, like vfio-pci and uio_pci_generic). The
# driver's module must be loaded. Returns non-zero with a message when it did not bind.
bind() {
  local bdf=$1 drv=$2 dev=/sys/bus/pci/devices/$1 i=0
  if [ "$(driver_of "$bdf")" = "$drv" ]; then return 0; fi
  if [ -e "$dev/driver" ]; then echo "$bdf" >"$dev/driver/unbind" || return 1; fi
  echo "$drv" >"$dev/driver_override" || return 1
  echo "$bdf" >/sys/bus/pci/drivers_probe
  while [ "$(driver_of "$bdf")" != "$drv" ]; do
    i=$((i + 1))
    if [ $i -gt 50 ]; then echo "bind: $bdf did not bind to $drv (driver: '$(driver_of "$bdf")')"; return 1; fi
    sleep 0.1
  done
}

# emit_json NAME FILE: one GUEST-JSON line with FILE's JSON on it.
emit_json() {
  echo "GUEST-JSON $1 $(tr -d '\n' <"$2")"
}

# run_step NAME CMD...: runs CMD, records ok/FAIL with its exit code and the last lines of its
# output on failure. Its stdout goes to /tmp/step.out, its stderr to /tmp/step.err.
run_step() {
  local name=$1; shift
  local t0 rc
  t0=$(now)
  "$@" >/tmp/step.out 2>/tmp/step.err
  rc=$?
  if [ $rc -eq 0 ]; then
    pass "$name ($(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'))"
  else
    fail "$name: exit $rc"
    tail -20 /tmp/step.out | sed 's/^/     | /'
    tail -20 /tmp/step.err | sed 's/^/     ! /'
  fi
  return $rc
}

# perf_json NAME SLUICE_PERF_ARGS...: runs `sluice perf ... --json`, records the step and emits
# its report as GUEST-JSON NAME.
perf_json() {
  local name=$1; shift
  if run_step "$name" sluice perf "$@" --json; then
    emit_json "$name" /tmp/step.out
  fi
}

# fio_json NAME FIO_ARGS...: runs fio with JSON output and emits it as GUEST-JSON NAME.
fio_json() {
  local name=$1; shift
  if run_step "$name" fio --output-format=json --output=/tmp/fio.json "$@"; then
    emit_json "$name" /tmp/fio.json
  fi
}
