#!/usr/bin/env bash
# Boots a software-emulated (TCG) q35 guest with an emulated Intel IOMMU and one QEMU NVMe
# controller with several namespaces on scratch raw images, streams its serial console and
# exits with the guest script's exit code (the "GUEST-EXIT <rc>" line make-initramfs's init
# prints). The controller sits at PCI 0000:00:04.0.
#
# Usage: run-guest.sh --kernel VMLINUX --initrd FILE [options]
#   --timeout SEC     hard limit for the whole run (default 240); exit 124 when hit
#   --mem MB          guest memory (default 1024)
#   --smp N           guest CPUs (default 2)
#   --ns SIZE         add a namespace of SIZE (truncate syntax, e.g. 64M); repeatable;
#                     default two namespaces, 64M and 16M
#   --append ARGS     extra kernel command-line arguments
#   --net             a virtio NIC on QEMU's user network (PCI 0000:00:05.0): the guest is
#                     10.0.2.15/24 and reaches the host's 127.0.0.1 at 10.0.2.2
#   --hostfwd H:G     with --net: the host's 127.0.0.1:H forwards to the guest's port G
#                     (TCP; repeatable)
#   --vhost-user-blk SOCK[,QUEUES]  a vhost-user-blk-pci disk served on the Unix socket SOCK
#                     by another process (QUEUES virtqueues, default 1); repeatable. The
#                     guest's RAM then lives in a shared memfd, which the serving process maps.
#   --vhost-user-scsi SOCK[,QUEUES] a vhost-user-scsi-pci controller (QUEUES request queues)
#                     served on SOCK; repeatable; shared RAM as for --vhost-user-blk
#   --vhost-reconnect SEC  QEMU reconnects to a vhost-user socket whose back end went away,
#                     trying every SEC seconds (the guest's I/O waits meanwhile); without it,
#                     a back end that dies is gone for good
#   --virtio-blk FILE[,QUEUES]      QEMU's own virtio-blk-pci disk on FILE (io_uring through
#                     the page cache, so FILE may be on tmpfs): the peer vhost-user disks are
#                     measured against; repeatable
#   --log FILE        keep the serial console log here (default: a scratch file, removed)
#   --quiet           do not stream the console to stdout
# Nothing outlives it: QEMU is killed on any exit of this script (trap, and a parent-death
# signal for SIGKILL); the scratch images are removed.
set -euo pipefail

kernel="" initrd="" timeout=240 mem=1024 smp=2 append="" log="" quiet=0 net=() fwd=
sizes=() disks=() vhost=() reconnect=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --ns) sizes+=("$2"); shift 2 ;;
    --append) append=$2; shift 2 ;;
    --net) net=(-device virtio-net-pci,netdev=net0,bus=pcie.0,addr=05.0,romfile=); shift ;;
    --hostfwd) fwd+=",hostfwd=tcp:127.0.0.1:${2%%:*}-:${2#*:}"; shift 2 ;;
    --vhost-user-blk|--vhost-user-scsi) vhost+=("${1#--}" "$2"); shift 2 ;;
    --vhost-reconnect) reconnect=$2; shift 2 ;;
    --virtio-blk)
      n=${#disks[@]} q=1; [[ $2 == *,* ]] && q=${2#*,}
      disks+=(-drive "file=${2%%,*},if=none,id=vblk$n,format=raw,cache=writeback,aio=io_uring"
              -device "virtio-blk-pci,drive=vblk$n,num-queues=$q")
      shift 2 ;;
    --log) log=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    *) echo "run-guest: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f $kernel && -f $initrd ]] || { echo "usage: $0 --kernel VMLINUX --initrd FILE [...]" >&2; exit 2; }
if [[ ${#net[@]} -gt 0 ]]; then net=(-netdev "user,id=net0$fwd" "${net[@]}"); fi
[[ ${#sizes[@]} -gt 0 ]] || sizes=(64M 16M)
for ((i = 0; i < ${#vhost[@]}; i += 2)); do  # kind SOCK[,QUEUES] pairs
  spec=${vhost[i + 1]} q=1 n=vhost$((i / 2))
  [[ $spec == *,* ]] && q=${spec#*,}
  case ${vhost[i]} in
    vhost-user-blk) device="vhost-user-blk-pci,chardev=$n,num-queues=$q" ;;
    *) device="vhost-user-scsi-pci,chardev=$n,num_queues=$q" ;;
  esac
  disks+=(-chardev "socket,id=$n,path=${spec%%,*}${reconnect:+,reconnect=$reconnect}" -device "$device")
done
command -v qemu-system-x86_64 >/dev/null || { echo "run-guest: qemu-system-x86_64 not installed" >&2; exit 77; }

. "$(dirname "$0")/scratch.sh"
scratch=$(scratch_dir sluice-guest)
[[ -n $log ]] || log=$scratch/console.log
qpid="" tpid=""
cleanup() {
  if [[ -n $qpid ]]; then kill -9 "$qpid" 2>/dev/null || true; fi
  if [[ -n $tpid ]]; then kill "$tpid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nvme=(-device nvme,id=nvme0,serial=sluice-guest,bus=pcie.0,addr=04.0)
i=0
for s in "${sizes[@]}"; do
  i=$((i + 1))
  truncate -s "$s" "$scratch/ns$i.img"
  nvme+=(-drive "file=$scratch/ns$i.img,if=none,id=ns$i,format=raw,cache=unsafe,discard=unmap"
         -device "nvme-ns,drive=ns$i,bus=nvme0,nsid=$i")
done

# iommu=pt: devices left to the kernel (and uio_pci_generic, which hands physical addresses to
# the device) get an identity mapping; vfio-pci still gets its own translated domain.
cmdline="console=ttyS0 intel_iommu=on iommu=pt quiet loglevel=4 panic=-1 mitigations=off $append"
start=$SECONDS
: >"$log"  # before the tail below looks for it
# stdin from /dev/null: QEMU must never wait for or steal a terminal. --pdeathsig: QEMU dies
# with this script even when it is SIGKILLed and no trap runs.
# A vhost-user back end reads the guest's rings and buffers in place: the guest's RAM must be
# memory it can map (a memfd QEMU passes it in SET_MEM_TABLE).
machine=q35,kernel-irqchip=split memory=()
if [[ ${#vhost[@]} -gt 0 ]]; then
  machine+=,memory-backend=mem
  memory=(-object "memory-backend-memfd,id=mem,size=${mem}M,share=on")
fi
setpriv --pdeathsig KILL qemu-system-x86_64 -accel tcg -cpu max -machine "$machine" -m "$mem" -smp "$smp" "${memory[@]}" \
  -device intel-iommu,caching-mode=on,aw-bits=48 -nodefaults -nographic -serial stdio -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "$cmdline" "${nvme[@]}" "${net[@]}" "${disks[@]}" </dev/null >"$log" 2>&1 &
qpid=$!
if [[ $quiet -eq 0 ]]; then
  # JSON reports are for the caller's parser; show their names only.
  tail -s 0.2 -n +1 -f --pid="$qpid" "$log" | tr -d '\r' | sed -u 's/\(GUEST-JSON [^ ]*\) .*/\1 {...}/' &
  tpid=$!
fi

timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
  if ((SECONDS - start >= timeout)); then
    timed_out=1
    kill "$qpid" 2>/dev/null || true; sleep 1; kill -9 "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
qrc=0
wait "$qpid" || qrc=$?
qpid=""
if [[ -n $tpid ]]; then wait "$tpid" 2>/dev/null || true; tpid=""; fi
elapsed=$((SECONDS - start))

if [[ $timed_out -eq 1 ]]; then
  echo "run-guest: timed out after ${timeout} s; last console lines:" >&2
  tail -5 "$log" | tr -d '\r' >&2
  exit 124
fi
boot=$(tr -d '\r' <"$log" | grep -o 'GUEST-START [0-9.]*' | head -1 | cut -d' ' -f2)
rc=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-EXIT \([0-9]*\)$/\1/p' | tail -1)
if [[ -z $rc ]]; then
  echo "run-guest: the guest stopped without a GUEST-EXIT line (qemu exit $qrc); last console lines:" >&2
  tail -15 "$log" | tr -d '\r' >&2
  exit 1
fi
echo "run-guest: init started ${boot:-?} s after kernel start; guest script exit $rc; ${elapsed} s wall" >&2
exit "$rc"
