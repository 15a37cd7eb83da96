# shellcheck shell=bash
# Helpers shared by scripts/capture-fixtures.sh (cgroup v1, on the host) and
# scripts/lib/capture-v2-guest.sh (cgroup v2, inside the cgv2vm VM).
# Sourced, not executed. Callers set: STATE (scratch dir), INFO (capture info file).

log() { printf '[capture %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# The python interpreter used for the allocating workloads (small, predictable baseline RSS).
PY=${HEADROOM_CAPTURE_PYTHON:-/usr/bin/python3}

# Workload snippets (argv[1] = ready-file path, touched once the memory is held).
# b"\x01" * n is one malloc + memset, so every page is written (really resident).
PY_HOLD='import sys, time
b = b"\x01" * (int(sys.argv[2]) << 20)
open(sys.argv[1], "w").close()
while True:
    time.sleep(3600)'
PY_ALLOC_ONCE='import sys
b = b"\x01" * (int(sys.argv[1]) << 20)
print("allocated", len(b), "bytes: NOT expected to get here", flush=True)'

info() { printf '%s\n' "$*" >> "$INFO"; }

# run_in_cg <cgroup dir> <command...>
# Starts <command> in the background, in <cgroup dir>: a sh moves itself into the cgroup
# (cgroup.procs), then exec's the command, so the PID is that of the workload and nothing is
# allocated before the move. Sets LAST_PID and appends it to STARTED_PIDS.
STARTED_PIDS=()
run_in_cg() {
  local cg=$1; shift
  sh -c 'echo $$ > "$1/cgroup.procs" || exit 97; shift; exec "$@"' sh "$cg" "$@" \
    >> "$STATE/workloads.log" 2>&1 < /dev/null &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
}

# forget_pid <pid>: drop an already reaped PID from STARTED_PIDS (never kill a reused PID).
forget_pid() {
  local p keep=()
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

# wait_for_file <path> <timeout seconds> [<pid that must stay alive>]
wait_for_file() {
  local f=$1 t=$2 pid=${3:-} i=0
  while [ ! -e "$f" ]; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "workload $pid died before $f appeared; log:"; tail -n 20 "$STATE/workloads.log" >&2 || true
      return 1
    fi
    [ "$i" -ge $((t * 5)) ] && { log "timeout waiting for $f"; return 1; }
    sleep 0.2; i=$((i + 1))
  done
}

# wait_pid_in_cg <cgroup dir> <pid>: until the kernel lists <pid> in cgroup.procs.
wait_pid_in_cg() {
  local cg=$1 pid=$2 i=0
  until grep -qx "$pid" "$cg/cgroup.procs" 2>/dev/null; do
    [ "$i" -ge 100 ] && { log "pid $pid never showed up in $cg/cgroup.procs"; return 1; }
    kill -0 "$pid" 2>/dev/null || { log "pid $pid exited before joining $cg"; return 1; }
    sleep 0.1; i=$((i + 1))
  done
}

# copy_files <src dir> <dst dir> <case> <file...>: byte-for-byte copies (cat) of whatever exists.
# Missing / unreadable files are recorded in INFO, not faked.
copy_files() {
  local src=$1 dst=$2 case=$3; shift 3
  local f missing=() unreadable=()
  mkdir -p "$dst"
  for f in "$@"; do
    if [ -e "$src/$f" ]; then
      if ! cat "$src/$f" > "$dst/$f" 2>>"$STATE/copy-errors.log"; then
        rm -f "$dst/$f"; unreadable+=("$f")
      fi
    else
      missing+=("$f")
    fi
  done
  info "$case.missing=${missing[*]:-}"
  [ ${#unreadable[@]} -eq 0 ] || info "$case.unreadable=${unreadable[*]}"
}

# copy_proc <pid> <dst dir>: the safe /proc/<pid> files (never environ or cmdline).
PROC_FILES=(status smaps_rollup stat statm cgroup comm)
copy_proc() {
  local pid=$1 dst=$2 f
  mkdir -p "$dst"
  for f in "${PROC_FILES[@]}"; do cat "/proc/$pid/$f" > "$dst/$f"; done
}

# kill_pids <pid...>: SIGKILL the given PIDs (ours) and reap them.
kill_pids() {
  local p
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# rmdir_retry <dir>: a cgroup can be removed only once its tasks are really gone.
rmdir_retry() {
  local d=$1 i=0
  while [ -d "$d" ]; do
    rmdir "$d" 2>/dev/null && return 0
    [ "$i" -ge 50 ] && { log "could not rmdir $d"; return 1; }
    sleep 0.1; i=$((i + 1))
  done
}
