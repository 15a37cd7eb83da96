#!/usr/bin/env bash
# Run the real cgroup v2 integration suite (vitest project "v2", test/integration/v2/) inside the
# cgv2vm QEMU VM: ONE boot, vitest runs once in it, its output streams here.
#
#   scripts/test-v2.sh [vitest args...]        e.g. scripts/test-v2.sh test/integration/v2/oom.test.ts
#
# Needs what ../shared/cgv2vm/setup.sh installs (apt-get install qemu-system-x86 busybox-static
# xz-utils, plus the Debian kernel package it downloads) and node_modules (npm ci).
# Optional: mkfs.ext4 (e2fsprogs) on this machine; then the page-cache tests use ext4 on a RAM disk
# inside the VM (kernel modules copied from the cgv2vm cache), else the 9p repo mount (see lib.ts).
#
# Environment:
#   CGV2VM_DIR       the cgv2vm tool (default: <repo>/../shared/cgv2vm)
#   CGV2VM_TIMEOUT   seconds before the VM is killed (default 1500)
#   CGV2VM_MEM       guest RAM in MiB (default 2048)
#   CGV2VM_ACCEL     auto|kvm|tcg (default auto: KVM only when it is really usable)
#   HEADROOM_V2_JSON also write vitest's JSON report to this path (inside the repo; scripts/test-all.sh uses it)
# Exit status: vitest's (0 = all passed); 124 VM timed out; 125 VM failed; 2 usage/setup problem.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMDIR=${CGV2VM_DIR:-$REPO/../shared/cgv2vm}
RUNNER=$VMDIR/run-in-cgv2-vm.sh
export CGV2VM_TIMEOUT=${CGV2VM_TIMEOUT:-1500}
export CGV2VM_MEM=${CGV2VM_MEM:-2048}
CACHE=${CGV2VM_CACHE:-/tmp/cgv2/cache}

say() { printf 'test-v2: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit "${2:-2}"; }

[ -x "$RUNNER" ] || die "cgv2vm not found at $VMDIR (set CGV2VM_DIR)"
[ -d "$REPO/node_modules/vitest" ] || die "node_modules missing: run npm ci in $REPO first"

# Which accelerator will the VM get? The same test run-in-cgv2-vm.sh makes for "auto".
accel=${CGV2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
  why=
  if [ ! -e /dev/kvm ]; then why="/dev/kvm does not exist"
  elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then why="/dev/kvm is not readable and writable by $(id -un)"
  elif [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; then
    why="neither kvm_intel nor kvm_amd is loaded ($(ls -d /sys/module/kvm* 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')present: no hardware virtualisation here, e.g. no nested KVM)"
  fi
  if [ -n "$why" ]; then
    say "KVM is not usable: $why."
    say "Falling back to TCG (software emulation): slow — the suite takes several minutes — but it works."
  else
    say "using KVM"
  fi
elif [ "$accel" = tcg ]; then
  say "CGV2VM_ACCEL=tcg: software emulation (slow, but it works)"
fi

say "building the agent (npx tsc -p tsconfig.json)"
(cd "$REPO" && npx tsc -p tsconfig.json) || die "the agent does not build" 1

# Kernel + initramfs (idempotent; also installs qemu/busybox/xz on first use).
"$VMDIR/setup.sh" || die "cgv2vm setup failed" 125

# Modules for an ext4 file system on a brd RAM disk inside the VM (a disk-like page cache: the
# VM's /tmp is tmpfs, / an overlay on tmpfs, the repo a 9p mount without cgroup writeback).
KMOD_ENV=()
KVER=$(cat "$CACHE/kernel.version" 2>/dev/null || true)
KSRC=$CACHE/kernel/lib/modules/$KVER/kernel
KDST=$REPO/tmp/cgv2-kmod/$KVER   # <repo>/tmp/ is git-ignored
if [ -n "$KVER" ] && [ -d "$KSRC" ] && { [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ]; }; then
  mkdir -p "$KDST"; ok=1
  for p in drivers/block/brd fs/ext4/ext4 fs/jbd2/jbd2 fs/mbcache lib/crc16 crypto/crc32c_generic; do
    n=$(basename "$p")
    if [ -f "$KSRC/$p.ko" ]; then cp -f "$KSRC/$p.ko" "$KDST/$n.ko"
    elif [ -f "$KSRC/$p.ko.xz" ]; then xz -dc "$KSRC/$p.ko.xz" > "$KDST/$n.ko"
    else say "note: module $p not in $KSRC"; ok=0; fi
  done
  if [ $ok = 1 ]; then KMOD_ENV=(HEADROOM_V2_KMOD_DIR="$KDST"); fi
else
  say "note: no kernel modules or mkfs.ext4: page-cache tests use the 9p repo mount (see test/integration/v2/lib.ts)"
fi

# Inside the VM: bring up lo (the agent's HTTP endpoint; guest-init leaves it down), then vitest.
GUEST='ip link set lo up 2>/dev/null || busybox ip link set lo up || exit 125
echo "test-v2 (in the VM): kernel $(uname -r), $(nproc) vCPU, $(awk "/MemTotal/ {print int(\$2/1024)}" /proc/meminfo) MiB, cgroup $(cat /proc/self/cgroup)"
if [ -n "${HEADROOM_V2_JSON:-}" ]; then set -- --reporter=default --reporter=json --outputFile.json="$HEADROOM_V2_JSON" "$@"; fi
exec npx vitest run --project v2 "$@"'

say "booting the cgroup v2 VM once (timeout ${CGV2VM_TIMEOUT}s, ${CGV2VM_MEM} MiB)"
start=$(date +%s)
cd "$REPO" || exit 2
env "${KMOD_ENV[@]}" "$RUNNER" "$REPO" bash -c "$GUEST" test-v2 "$@"
rc=$?
took=$(( $(date +%s) - start ))
case $rc in
  0)   say "PASS: cgroup v2 suite passed (VM wall time ${took}s)";;
  124) say "FAIL: the VM hit CGV2VM_TIMEOUT=${CGV2VM_TIMEOUT}s (wall time ${took}s)";;
  125) say "FAIL: the VM itself failed (rc 125; rerun with CGV2VM_DEBUG=1 for the kernel log)";;
  *)   say "FAIL: vitest exited $rc (VM wall time ${took}s)";;
esac
exit $rc
