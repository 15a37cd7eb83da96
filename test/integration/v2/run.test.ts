// Real cgroup v2: `headroom run --memory 64M -- COMMAND`. On v2 the agent's own cgroup holds a
// process (the agent), so before it can enable the memory controller for a child cgroup it must
// move itself into a leaf ("headroom-agent"), then undo all of it when the command is gone.
//
// The agent runs alone in a fresh sibling cgroup (runjob-*): the situation of a container whose
// only process is headroom. It cannot run from /sys/fs/cgroup/job itself, because vitest lives
// there too and v2's no-internal-processes rule then forbids +memory in job/cgroup.subtree_control
// whatever the agent does (second test).
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { CGROOT, RAMP, SKIP, title, ensureLoopback, indexOf, killLines, measure, riskLines } from './lib.js';

const JOB = process.env['CGV2VM_CGROUP'] ?? '/sys/fs/cgroup/job';
const subdirs = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
const subtree = (dir: string) => readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim();

describe.skipIf(SKIP)(title('cgroup v2: headroom run'), () => {
  let agent: Agent | undefined;
  beforeAll(() => ensureLoopback());
  afterEach(async () => { await agent?.stop(); agent = undefined; });
  afterAll(async () => { await removeAllCgroups(); });

  it('runs the command in a 64M leaf, warns before the OOM kill, exits 137 and leaves nothing behind', async () => {
    const job = makeCgroup(CGROOT, 'runjob', 2);
    expect(subtree(job.dir)).toBe('');
    // Slower than ramp.mjs's default (40 MiB/s), so that the 80 % → 100 % stretch (13 MiB) spans
    // several 500 ms samples: the test asserts an order of events, not a race.
    agent = await startAgent(
      ['run', '--memory', '64M', '--interval', '500ms', '--', process.execPath, RAMP, '--step-mib', '1', '--every-ms', '100', '--quiet'],
      { wrap: ['/bin/sh', '-c', 'echo $$ > "$1" || exit 125; shift; exec "$@"', 'sh', join(job.dir, 'cgroup.procs')] },
    );
    const a = agent;
    const agentPid = a.proc.pid!;
    // While it runs: the agent sits in job/headroom-agent, the command in job/headroom-run-<pid> (64M).
    const during = await waitFor('the command cgroup', () => {
      const runDir = join(job.dir, `headroom-run-${agentPid}`);
      if (!existsSync(join(runDir, 'memory.max'))) return undefined;
      // memory.max and memory.swap.max exist (as "max") from mkdir on: wait for both writes.
      if (readFileSync(join(runDir, 'memory.swap.max'), 'utf8').trim() !== '0') return undefined;
      return {
        dirs: subdirs(job.dir), subtree: subtree(job.dir),
        agentIn: readFileSync(`/proc/${agentPid}/cgroup`, 'utf8').trim(),
        max: readFileSync(join(runDir, 'memory.max'), 'utf8').trim(),
        swapMax: readFileSync(join(runDir, 'memory.swap.max'), 'utf8').trim(),
      };
    }, 60_000, 20);
    expect(during.dirs).toEqual(['headroom-agent', `headroom-run-${agentPid}`]);
    expect(during.subtree.split(' ')).toContain('memory');
    expect(during.agentIn).toBe(`0::${job.dir.slice(CGROOT.length)}/headroom-agent`);
    expect(during.max).toBe(String(64 * 1024 * 1024));
    expect(during.swapMax).toBe('0');

    const code = await a.exited;
    expect(code).toBe(137);
    const warning = riskLines(a.logs).find((l) => l['risk'] === 'warning');
    const kill = killLines(a.logs)[0];
    const exitLine = a.logs.find((l) => /command exited with signal SIGKILL/.test(l.msg));
    expect(warning, 'a warning line').toBeDefined();
    expect(kill, 'an OOM kill line').toBeDefined();
    expect(indexOf(a.logs, warning)).toBeLessThan(indexOf(a.logs, kill));
    expect(indexOf(a.logs, kill)).toBeLessThan(indexOf(a.logs, exitLine));
    expect(exitLine!['exit_status']).toBe(137);

    // Nothing left: no headroom-run-* / headroom-agent, the controller switched off again.
    expect(subdirs(job.dir)).toEqual([]);
    expect(subtree(job.dir)).toBe('');
    expect(job.pids()).toEqual([]);
    measure('run', {
      during, exit: code, warning_at: warning!.time, kill_at: kill!.time,
      warning_lead_ms: Date.parse(kill!.time) - Date.parse(warning!.time),
      warning_unreclaimable: warning!['unreclaimable_bytes'], after: { dirs: subdirs(job.dir), subtree: subtree(job.dir) },
    });
  });

  it('from a cgroup it shares with other processes (/job with vitest): a clear error, exit 1, nothing left', async () => {
    const before = { dirs: subdirs(JOB), subtree: subtree(JOB) };
    agent = await startAgent(['run', '--memory', '64M', '--', 'true'], { waitForPort: false });
    const code = await agent.exited;
    expect(code).toBe(1);
    const err = agent.logs.find((l) => l.level === 'error');
    expect(err?.msg).toMatch(/cannot enable the memory controller in \/sys\/fs\/cgroup\/job/);
    expect({ dirs: subdirs(JOB), subtree: subtree(JOB) }).toEqual(before);
    expect(readFileSync('/proc/self/cgroup', 'utf8').trim()).toBe('0::/job');
    measure('run from /job', { exit: code, error: err?.msg, job_after: before });
  });
});
