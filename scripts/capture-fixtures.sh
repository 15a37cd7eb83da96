#!/usr/bin/env bash
# Capture REAL kernel memory-cgroup files as test fixtures (test/fixtures/).
#
#   sudo scripts/capture-fixtures.sh [all|v1|v2]      (default: all)
#
# v1: run on this machine (cgroup v1 memory controller at /sys/fs/cgroup/memory). Child memory
#     cgroups headroom-capture-<case> are created below OUR OWN memory cgroup only
#     (grep memory /proc/self/cgroup), one workload per case, files copied with cat, then the
#     workloads are killed and the cgroups removed.
# v2: one boot of the cgroup v2 VM (/work/shared/cgv2vm/run-in-cgv2-vm.sh, override with
#     HEADROOM_CGV2VM) runs scripts/lib/capture-v2-guest.sh, which does the same with sibling
#     cgroups /sys/fs/cgroup/cap-<case>.
#
# Idempotent: captures into test/fixtures/.staging-<v> and replaces test/fixtures/<v> only on
# success; leftovers of an earlier interrupted run (cgroups, scratch files) are removed first.
# A trap kills the workloads and removes the cgroups and scratch files even on failure.
# Per-run details (kernel, date, original PIDs, missing files) go to test/fixtures/<v>/CAPTURE.txt;
# test/fixtures/README.md is the hand-written description.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIX=$REPO/test/fixtures
# shellcheck source=lib/capture-common.sh
. "$REPO/scripts/lib/capture-common.sh"

MODE=${1:-all}
case "$MODE" in all|v1|v2) ;; *) echo "usage: $0 [all|v1|v2]" >&2; exit 2;; esac
[ "$(id -u)" = 0 ] || die "must run as root (creates cgroups)"
[ "${CGV2VM:-}" != 1 ] || die "this is the host-side script; inside the VM scripts/lib/capture-v2-guest.sh runs"
SETTLE=${HEADROOM_CAPTURE_SETTLE:-3}
CGV2VM_RUN=${HEADROOM_CGV2VM:-/work/shared/cgv2vm/run-in-cgv2-vm.sh}

V1_FILES=(memory.usage_in_bytes memory.limit_in_bytes memory.max_usage_in_bytes memory.failcnt
  memory.stat memory.oom_control memory.kmem.usage_in_bytes memory.memsw.usage_in_bytes
  memory.memsw.limit_in_bytes memory.soft_limit_in_bytes memory.use_hierarchy cgroup.procs)
V1_CASES=(idle anon pagecache shmem oom)
PAGECACHE_FILE=/var/tmp/headroom-capture-pagecache.dat
SHMEM_FILE=/dev/shm/headroom-capture-shmem.dat

STATE=$(mktemp -d /var/tmp/headroom-capture-state.XXXXXX)
INFO=/dev/null
CREATED_CGS=()
V1_ROOT=

cleanup() {
  local rc=$? cg
  set +e
  [ ${#STARTED_PIDS[@]} -eq 0 ] || kill_pids "${STARTED_PIDS[@]}"
  for cg in "${CREATED_CGS[@]}"; do
    [ -d "$cg" ] || continue
    kill_cgroup_procs "$cg"; rmdir_retry "$cg"
  done
  rm -f "$PAGECACHE_FILE" "$SHMEM_FILE"
  rm -rf "$STATE" "$FIX/.staging-v1" "$FIX/.staging-v2" "$FIX/.scratch-v2"
  [ "$rc" = 0 ] || log "FAILED (exit $rc); cleaned up, existing fixtures left untouched"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Kill what is left in one of OUR capture cgroups (only ever called on headroom-capture-* dirs).
kill_cgroup_procs() {
  local cg=$1 p i
  for i in 1 2 3 4 5; do
    [ -s "$cg/cgroup.procs" ] || return 0
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < "$cg/cgroup.procs"
    sleep 0.2
  done
}

# ------------------------------------------------------------------------------------------ v1
v1_mkcg() {  # v1_mkcg <case> [<limit>]  -> CG
  CG=$V1_ROOT/headroom-capture-$1
  mkdir "$CG"; CREATED_CGS+=("$CG")
  if [ -n "${2:-}" ]; then echo "$2" > "$CG/memory.limit_in_bytes"; fi
}
v1_done() {  # v1_done <case>: capture, kill the case's workloads, remove its cgroup
  local case=$1
  copy_files "$CG" "$STAGE/$case" "$case" "${V1_FILES[@]}"
  kill_pids "${STARTED_PIDS[@]}"; STARTED_PIDS=()
  kill_cgroup_procs "$CG"; rmdir_retry "$CG"
}

capture_v1() {
  local own pid rc
  grep -qs '^cgroup /sys/fs/cgroup/memory cgroup .*memory' /proc/mounts \
    || die "no cgroup v1 memory controller at /sys/fs/cgroup/memory"
  own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
  [ -n "$own" ] || die "cannot find our memory cgroup in /proc/self/cgroup"
  V1_ROOT=/sys/fs/cgroup/memory${own%/}
  [ -d "$V1_ROOT" ] || die "no such cgroup dir: $V1_ROOT"
  case "$(stat -f -c %T "$(dirname "$PAGECACHE_FILE")")" in
    tmpfs|ramfs) die "$(dirname "$PAGECACHE_FILE") is tmpfs; need a disk-backed fs for the pagecache case";;
  esac
  log "v1: kernel $(uname -r), capture cgroups under $V1_ROOT"

  # Leftovers from an interrupted earlier run.
  local old
  for old in "$V1_ROOT"/headroom-capture-*; do
    [ -d "$old" ] || continue
    log "removing leftover $old"; kill_cgroup_procs "$old"; rmdir_retry "$old"
  done
  rm -f "$PAGECACHE_FILE" "$SHMEM_FILE"

  STAGE=$FIX/.staging-v1; rm -rf "$STAGE"; mkdir -p "$STAGE"
  INFO=$STAGE/CAPTURE.txt; : > "$INFO"
  info "# Written by scripts/capture-fixtures.sh; see test/fixtures/README.md"
  info "kernel=$(uname -r)"
  info "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  info "cgroup_mode=v1 (hybrid: cgroup2 at /sys/fs/cgroup/unified without memory controller)"
  info "parent_cgroup=$V1_ROOT (captures in <parent>/headroom-capture-<case>)"
  info "settle_seconds=$SETTLE"

  # host: the capturing shell's view.
  mkdir -p "$STAGE/host"
  cat "/proc/$$/mountinfo" > "$STAGE/host/mountinfo"
  cat "/proc/$$/cgroup" > "$STAGE/host/cgroup"

  # idle: a sleep, no limit.
  log "v1 idle"
  v1_mkcg idle
  run_in_cg "$CG" sleep infinity; wait_pid_in_cg "$CG" "$LAST_PID"
  info "idle.workload=sleep infinity; limit unset (default)"
  info "cgroup_dir_listing=$(LC_ALL=C ls "$CG" | tr '\n' ' ')"
  sleep "$SETTLE"; v1_done idle

  # anon: ~100 MiB of written anonymous memory.
  log "v1 anon"
  v1_mkcg anon 256M
  run_in_cg "$CG" "$PY" -c "$PY_HOLD" "$STATE/anon.ready" 100; pid=$LAST_PID
  wait_for_file "$STATE/anon.ready" 60 "$pid"
  sleep "$SETTLE"
  copy_proc "$pid" "$STAGE/anon/proc/4242"
  info "anon.workload=python3: b\"\\x01\" * 100 MiB, held; limit 256M"
  info "anon.original_pid=$pid (proc files in anon/proc/4242/, text unchanged)"
  v1_done anon

  # pagecache: dd a fresh 150 MiB file from inside the cgroup (disk-backed fs), read it back.
  log "v1 pagecache"
  v1_mkcg pagecache 256M
  run_in_cg "$CG" sh -c 'dd if=/dev/zero of="$1" bs=1M count=150 conv=fsync status=none &&
    cat "$1" > /dev/null && : > "$2" && exec sleep infinity' sh "$PAGECACHE_FILE" "$STATE/pagecache.ready"
  pid=$LAST_PID
  wait_for_file "$STATE/pagecache.ready" 120 "$pid"
  sleep "$SETTLE"
  info "pagecache.workload=dd if=/dev/zero of=$PAGECACHE_FILE bs=1M count=150 conv=fsync; cat it >/dev/null; sleep ($(stat -f -c %T "$(dirname "$PAGECACHE_FILE")") per stat -f); limit 256M"
  v1_done pagecache
  rm -f "$PAGECACHE_FILE"

  # shmem: 80 MiB into a /dev/shm (tmpfs) file.
  log "v1 shmem"
  v1_mkcg shmem 256M
  run_in_cg "$CG" sh -c 'dd if=/dev/zero of="$1" bs=1M count=80 status=none &&
    : > "$2" && exec sleep infinity' sh "$SHMEM_FILE" "$STATE/shmem.ready"
  pid=$LAST_PID
  wait_for_file "$STATE/shmem.ready" 60 "$pid"
  sleep "$SETTLE"
  info "shmem.workload=dd if=/dev/zero of=$SHMEM_FILE bs=1M count=80; sleep; limit 256M"
  v1_done shmem
  rm -f "$SHMEM_FILE"

  # oom: a sibling sleep, then a process allocating 200 MiB past a 64M limit.
  log "v1 oom"
  v1_mkcg oom 64M
  run_in_cg "$CG" sleep infinity; wait_pid_in_cg "$CG" "$LAST_PID"
  run_in_cg "$CG" "$PY" -c "$PY_ALLOC_ONCE" 200; pid=$LAST_PID
  rc=0; wait "$pid" 2>/dev/null || rc=$?; forget_pid "$pid"
  info "oom.workload=sleep infinity (sibling) + python3: b\"\\x01\" * 200 MiB; limit 64M"
  info "oom.allocator_exit_status=$rc (137 = SIGKILL)"
  [ "$rc" = 137 ] || log "WARNING: oom allocator exited $rc, expected 137"
  sleep "$SETTLE"
  v1_done oom

  rm -rf "$FIX/v1"; mv "$STAGE" "$FIX/v1"
  log "v1 fixtures in $FIX/v1"
}

# ------------------------------------------------------------------------------------------ v2
capture_v2() {
  [ -x "$CGV2VM_RUN" ] || die "cgv2vm runner not found: $CGV2VM_RUN"
  local stage=$FIX/.staging-v2 rc=0
  rm -rf "$stage" "$FIX/.scratch-v2"; mkdir -p "$stage"
  log "v2: booting the cgroup v2 VM once (TCG: slow)"
  CGV2VM_TIMEOUT=${CGV2VM_TIMEOUT:-1500} "$CGV2VM_RUN" "$REPO" \
    bash "$REPO/scripts/lib/capture-v2-guest.sh" "$stage" "$FIX/.scratch-v2" || rc=$?
  [ "$rc" = 0 ] || die "VM capture failed (exit $rc)"
  [ -s "$stage/CAPTURE.txt" ] || die "VM capture produced no CAPTURE.txt"
  rm -rf "$FIX/v2"; mv "$stage" "$FIX/v2"
  log "v2 fixtures in $FIX/v2"
}

case "$MODE" in
  v1) capture_v1;;
  v2) capture_v2;;
  all) capture_v1; capture_v2;;
esac
log "done"
