#!/usr/bin/env bash
# Every test, in one command (`npm test`):
#   1. build the agent (the end-to-end and integration tests run the built binary)
#   2. unit + golden end-to-end + real cgroup v1 integration, on this machine
#   3. real cgroup v2 integration inside the ../shared/cgv2vm VM (one boot for the whole suite)
# Skip the VM with HEADROOM_SKIP_V2=1 (e.g. a quick local run); CI never sets it.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run --silent build || { echo "build failed" >&2; exit 1; }

out=$(mktemp -d "${TMPDIR:-/tmp}/headroom-tests.XXXXXX")
trap 'rm -rf "$out"' EXIT

npx vitest run --project unit --project e2e --project v1 \
  --reporter=default --reporter=json --outputFile.json="$out/host.json"
host_rc=$?

v2_rc=0
if [ "${HEADROOM_SKIP_V2:-0}" = 1 ]; then
  echo "cgroup v2 suite skipped (HEADROOM_SKIP_V2=1)"
else
  HEADROOM_V2_JSON="$PWD/.vitest-v2.json" bash scripts/test-v2.sh
  v2_rc=$?
  [ -f .vitest-v2.json ] && mv .vitest-v2.json "$out/v2.json"
fi

node scripts/test-summary.mjs "$out"/*.json
[ $host_rc = 0 ] && [ $v2_rc = 0 ]
