// The built agent on fixture trees (captured kernel files arranged as a pod sees them, see
// scripts/make-fixture-trees.mjs): its /metrics diffed against committed golden files, and
// `promtool check metrics` on the full output. UPDATE_GOLDEN=1 rewrites the golden files.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../helpers/agent.js';

const FIX = new URL('../fixtures/trees/', import.meta.url).pathname;
const GOLDEN = new URL('./golden/', import.meta.url).pathname;

let agent: Agent | undefined;
afterEach(async () => { await agent?.stop(); agent = undefined; });

// headroom_* families only (process_* and nodejs_* vary by run); the version label normalised.
function headroomOnly(text: string): string {
  return text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?headroom_/.test(l))
    .map((l) => l.replace(/version="[^"]*"/, 'version="VERSION"'))
    .join('\n') + '\n';
}

async function scrape(tree: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  agent = await startAgent(['--path.proc', `${FIX}${tree}/proc`, '--path.cgroup', `${FIX}${tree}/sys/fs/cgroup`, '--discovery-interval', '1h', ...args], { env });
  await waitFor('readiness', async () => (await fetch(`http://127.0.0.1:${agent!.port}/readyz`)).ok);
  return agent.metricsText();
}

function compareGolden(name: string, text: string): void {
  const got = headroomOnly(text);
  const file = `${GOLDEN}${name}.prom`;
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, got);
  if (!existsSync(file)) throw new Error(`no golden file ${file}: run UPDATE_GOLDEN=1 npx vitest run --project e2e and review it`);
  expect(got).toBe(readFileSync(file, 'utf8'));
}

function promtoolCheck(text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is needed (Debian package "prometheus"; .ci/run installs it): ${r.error.message}`);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}

describe('golden /metrics on fixture trees', () => {
  it('pod on cgroup v2: app read through /proc/PID/root, pause and self skipped, unreadable db reported', async () => {
    const text = await scrape('pod-v2', ['--container', 'app=node,db=postgres'], { HEADROOM_MEMORY_REQUEST: '134217728' });
    compareGolden('pod-v2', text);
    promtoolCheck(text);
    expect(text).not.toMatch(/container="pause"/);
    // the db container's cgroup cannot be read: no made-up cgroup numbers, an error, readable=0
    expect(text).not.toMatch(/headroom_memory_usage_bytes\{container="db"\}/);
    expect(text).toMatch(/headroom_read_errors_total\{container="db",source="proc_root"\} 1/);
    expect(text).toMatch(/headroom_target_readable\{container="db"\} 0/);
    const warn = agent!.logs.find((l) => l.container === 'db' && l.level === 'warn');
    expect(warn?.msg).toMatch(/cgroup \/\.\.\/cri-db of pid 9 not found/);
  });

  it('pod on cgroup v1: /dev/shm counted as unreclaimable, single container named by HEADROOM_TARGET_CONTAINER', async () => {
    const text = await scrape('pod-v1', [], { HEADROOM_TARGET_CONTAINER: 'app', HEADROOM_MEMORY_REQUEST: '64Mi' });
    compareGolden('pod-v1', text);
    promtoolCheck(text);
    expect(text).toMatch(/headroom_memory_bytes\{container="app",type="shmem"\} 83886080/);
    expect(text).toMatch(/headroom_memory_reclaimable_bytes\{container="app"\} 0/);
  });
});
