#!/usr/bin/env bash
# Runs INSIDE the cgv2vm VM (started by scripts/capture-fixtures.sh v2), as root in the leaf
# cgroup /sys/fs/cgroup/job. Captures cgroup v2 memory files for each case into <stage dir>.
#
#   capture-v2-guest.sh <stage dir> <scratch dir on the disk-backed host mount>
#
# Cases use sibling cgroups /sys/fs/cgroup/cap-<case> (the "no internal processes" rule keeps
# /job for this script), each removed again (cgroup.kill + rmdir). The whole VM is thrown
# away afterwards; only <stage dir> (and, until the trap removes it, <scratch dir>) persist.
set -euo pipefail

STAGE=${1:?usage: capture-v2-guest.sh <stage dir> <scratch dir>}
SCRATCH=${2:?usage: capture-v2-guest.sh <stage dir> <scratch dir>}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=capture-common.sh
. "$HERE/capture-common.sh"

[ "${CGV2VM:-}" = 1 ] || die "run me through scripts/capture-fixtures.sh v2 (inside the cgv2vm VM)"
CGROOT=/sys/fs/cgroup
[ "$(stat -f -c %T "$CGROOT")" = cgroup2fs ] || die "$CGROOT is not cgroup2"
grep -qw memory "$CGROOT/cgroup.subtree_control" || die "memory controller not enabled in $CGROOT"

SETTLE=${HEADROOM_CAPTURE_SETTLE:-3}
PRESSURE_SECONDS=${HEADROOM_CAPTURE_PRESSURE_SECONDS:-15}
V2_FILES=(memory.current memory.max memory.high memory.low memory.min memory.peak memory.stat
  memory.events memory.events.local memory.pressure memory.swap.current memory.swap.max
  memory.swap.events memory.oom.group cgroup.procs cgroup.controllers)
SHMEM_FILE=/dev/shm/headroom-capture-shmem.dat

STATE=$(mktemp -d /tmp/headroom-capture-state.XXXXXX)
INFO=/dev/null
CREATED_CGS=()

cgkill_rmdir() {
  local cg=$1
  [ -d "$cg" ] || return 0
  echo 1 > "$cg/cgroup.kill" 2>/dev/null || true
  rmdir_retry "$cg"
}
cleanup() {
  local rc=$? cg
  set +e
  [ ${#STARTED_PIDS[@]} -eq 0 ] || kill_pids "${STARTED_PIDS[@]}"
  for cg in "${CREATED_CGS[@]}"; do cgkill_rmdir "$cg"; done
  rm -f "$SHMEM_FILE"; rm -rf "$SCRATCH" "$STATE"
  [ "$rc" = 0 ] || log "guest capture FAILED (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

v2_mkcg() {  # v2_mkcg <name>  -> CG
  CG=$CGROOT/cap-$1
  cgkill_rmdir "$CG"
  mkdir "$CG"; CREATED_CGS+=("$CG")
}
v2_done() {  # v2_done <case>: capture, kill the case's workloads, remove its cgroup
  copy_files "$CG" "$STAGE/$1" "$1" "${V2_FILES[@]}"
  kill_pids "${STARTED_PIDS[@]}"; STARTED_PIDS=()
  cgkill_rmdir "$CG"
}

mkdir -p "$STAGE"
INFO=$STAGE/CAPTURE.txt; : > "$INFO"
info "# Written by scripts/capture-fixtures.sh (VM part: scripts/lib/capture-v2-guest.sh); see test/fixtures/README.md"
info "kernel=$(uname -r)"
info "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
info "cgroup_mode=v2 (cgv2vm QEMU VM, cgroup2 at $CGROOT, mount options: $(findmnt -n -o OPTIONS "$CGROOT"))"
info "vm_mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo) swap_total_kb=$(awk '/^SwapTotal:/ {print $2}' /proc/meminfo)"
info "script_cgroup=$(cat /proc/self/cgroup) (captures in sibling cgroups $CGROOT/cap-<case>)"
info "settle_seconds=$SETTLE"
log "v2: kernel $(uname -r)"

# host: this script's view.
mkdir -p "$STAGE/host"
cat "/proc/$$/mountinfo" > "$STAGE/host/mountinfo"
cat "/proc/$$/cgroup" > "$STAGE/host/cgroup"

# Where can the pagecache case put a disk-backed file? (/tmp is tmpfs; / is an overlay whose
# upper layer is a tmpfs, so its writes would be shmem too.) Record what we saw.
pc_seen=()
for d in /tmp /var/tmp "$(dirname "$SCRATCH")"; do
  pc_seen+=("$d=$(findmnt -n -o FSTYPE --target "$d")/statf:$(stat -f -c %T "$d")")
done
loop_ext4="loop-control:$([ -e /dev/loop-control ] && echo yes || echo no),ext4-in-/proc/filesystems:$(grep -qw ext4 /proc/filesystems && echo yes || echo no)"
info "pagecache.fs_survey=${pc_seen[*]} $loop_ext4"
mkdir -p "$SCRATCH"
PAGECACHE_FILE=$SCRATCH/pagecache.dat
PC_FSTYPE=$(findmnt -n -o FSTYPE --target "$SCRATCH")
case "$PC_FSTYPE" in tmpfs|ramfs|overlay) die "scratch $SCRATCH is on $PC_FSTYPE";; esac

# idle
log "v2 idle"
v2_mkcg idle
run_in_cg "$CG" sleep infinity; wait_pid_in_cg "$CG" "$LAST_PID"
info "idle.workload=sleep infinity; memory.max untouched (max)"
info "cgroup_dir_listing=$(LC_ALL=C ls "$CG" | tr '\n' ' ')"
info "root_cgroup_dir_listing=$(LC_ALL=C ls "$CGROOT" | tr '\n' ' ')"
sleep "$SETTLE"; v2_done idle

# anon
log "v2 anon"
v2_mkcg anon; echo 256M > "$CG/memory.max"
run_in_cg "$CG" "$PY" -c "$PY_HOLD" "$STATE/anon.ready" 100; pid=$LAST_PID
wait_for_file "$STATE/anon.ready" 180 "$pid"
sleep "$SETTLE"
copy_proc "$pid" "$STAGE/anon/proc/4242"
info "anon.workload=python3: b\"\\x01\" * 100 MiB, held; memory.max=256M"
info "anon.original_pid=$pid (proc files in anon/proc/4242/, text unchanged)"
v2_done anon

# pagecache (file on the 9p host mount: the only non-tmpfs file system in the VM)
log "v2 pagecache ($PC_FSTYPE)"
v2_mkcg pagecache; echo 256M > "$CG/memory.max"
run_in_cg "$CG" sh -c 'dd if=/dev/zero of="$1" bs=1M count=150 conv=fsync status=none &&
  cat "$1" > /dev/null && : > "$2" && exec sleep infinity' sh "$PAGECACHE_FILE" "$STATE/pagecache.ready"
pid=$LAST_PID
wait_for_file "$STATE/pagecache.ready" 600 "$pid"
sleep "$SETTLE"
info "pagecache.workload=dd if=/dev/zero of=<repo>/test/fixtures/.scratch-v2/pagecache.dat bs=1M count=150 conv=fsync; cat it >/dev/null; sleep; fs=$PC_FSTYPE ($(findmnt -n -o OPTIONS --target "$SCRATCH")); memory.max=256M"
v2_done pagecache
rm -f "$PAGECACHE_FILE"

# shmem
log "v2 shmem"
v2_mkcg shmem; echo 256M > "$CG/memory.max"
run_in_cg "$CG" sh -c 'dd if=/dev/zero of="$1" bs=1M count=80 status=none &&
  : > "$2" && exec sleep infinity' sh "$SHMEM_FILE" "$STATE/shmem.ready"
pid=$LAST_PID
wait_for_file "$STATE/shmem.ready" 180 "$pid"
sleep "$SETTLE"
info "shmem.workload=dd if=/dev/zero of=$SHMEM_FILE bs=1M count=80; sleep; memory.max=256M"
v2_done shmem
rm -f "$SHMEM_FILE"

# oom
log "v2 oom"
v2_mkcg oom; echo 64M > "$CG/memory.max"
run_in_cg "$CG" sleep infinity; wait_pid_in_cg "$CG" "$LAST_PID"
run_in_cg "$CG" "$PY" -c "$PY_ALLOC_ONCE" 200; pid=$LAST_PID
rc=0; wait "$pid" 2>/dev/null || rc=$?; forget_pid "$pid"
info "oom.workload=sleep infinity (sibling) + python3: b\"\\x01\" * 200 MiB; memory.max=64M"
info "oom.allocator_exit_status=$rc (137 = SIGKILL)"
[ "$rc" = 137 ] || log "WARNING: oom allocator exited $rc, expected 137"
sleep "$SETTLE"
v2_done oom

# pressure: 120 MiB of anon memory against memory.high=64M (no swap: reclaim cannot succeed, the
# allocator is throttled in mem_cgroup_handle_over_high, which PSI counts as a memory stall).
log "v2 pressure (${PRESSURE_SECONDS}s)"
v2_mkcg pressure; echo 64M > "$CG/memory.high"
run_in_cg "$CG" "$PY" -c "$PY_HOLD" "$STATE/pressure.ready" 120; pid=$LAST_PID
wait_pid_in_cg "$CG" "$pid"
sleep "$PRESSURE_SECONDS"
kill -0 "$pid" 2>/dev/null || die "pressure workload died"
info "pressure.workload=python3: b\"\\x01\" * 120 MiB, held; memory.high=64M, memory.max=max; captured after ${PRESSURE_SECONDS}s"
info "pressure.allocation_completed_at_capture=$([ -e "$STATE/pressure.ready" ] && echo yes || echo no)"
v2_done pressure

# sidecar: an "app" in its own cgroup + pid/mount/cgroup namespaces, cgroup2 remounted inside
# (as container runtimes do); we look at it from outside through /proc/<pid>.
log "v2 sidecar"
v2_mkcg app; echo 256M > "$CG/memory.max"
run_in_cg "$CG" unshare --pid --fork --mount-proc --mount --cgroup \
  sh -c 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && : > "$1" && exec sleep infinity' \
  sh "$STATE/app.ready"
upid=$LAST_PID
wait_for_file "$STATE/app.ready" 120 "$upid"
app=$(tr -d ' \n' < "/proc/$upid/task/$upid/children")
[ -n "$app" ] && [ -d "/proc/$app" ] || die "cannot find the app pid (child of unshare $upid)"
sleep "$SETTLE"
SC=$STAGE/sidecar; mkdir -p "$SC/via-proc-root"
cat "/proc/$app/cgroup" > "$SC/proc-pid-cgroup"
LC_ALL=C ls "/proc/$app/root/sys/fs/cgroup/" > "$SC/root-listing"
for f in memory.current memory.max memory.stat cgroup.procs; do
  cat "/proc/$app/root/sys/fs/cgroup/$f" > "$SC/via-proc-root/$f"
done
cat "/proc/$app/mountinfo" > "$SC/proc-pid-mountinfo"
# The same two files as seen from inside the app's namespaces (pid + mount + cgroup).
nsenter -t "$app" -p -m -C -r -w cat /proc/1/cgroup > "$SC/inside-ns-proc-1-cgroup"
nsenter -t "$app" -p -m -C -r -w cat /sys/fs/cgroup/cgroup.procs > "$SC/inside-ns-cgroup.procs"
info "sidecar.workload=sh moves itself to cap-app (memory.max=256M), exec unshare --pid --fork --mount-proc --mount --cgroup (pid $upid) -> forked app (pid $app outside, 1 inside): umount -l /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup; exec sleep"
info "sidecar.unshare_pid=$upid app_pid=$app"
info "sidecar.cgroup.procs_via_proc_root_contains_app_pid=$(grep -qx "$app" "$SC/via-proc-root/cgroup.procs" && echo yes || echo no) (content: $(tr '\n' ' ' < "$SC/via-proc-root/cgroup.procs"))"
info "sidecar.cgroup.procs_via_proc_root_contains_unshare_pid=$(grep -qx "$upid" "$SC/via-proc-root/cgroup.procs" && echo yes || echo no)"
info "sidecar.outside_cgroup.procs_of_cap-app=$(tr '\n' ' ' < "$CG/cgroup.procs")"
info "sidecar.outside_memory.current_of_cap-app=$(cat "$CG/memory.current") via_proc_root=$(cat "$SC/via-proc-root/memory.current")"
kill_pids "${STARTED_PIDS[@]}"; STARTED_PIDS=()
cgkill_rmdir "$CG"

left=$(find "$CGROOT" -maxdepth 1 -name 'cap-*' | tr '\n' ' ')
info "leftover_cgroups=${left:-none}"
log "v2 capture complete"
