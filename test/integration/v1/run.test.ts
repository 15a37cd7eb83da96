// Real cgroup v1: `headroom run` makes its own child memory cgroup, runs the command in it, exits with
// the command's status, and removes the cgroup. On this hybrid host it also gets PSI from a twin
// cgroup in the unified (v2) hierarchy.
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../../helpers/agent.js';
import { hasV1Memory, ownV1MemoryDir, removeAllCgroups } from '../../helpers/cgroup.js';
import { value, type Series } from '../../helpers/metrics.js';
import { diskScratchDir, firstLog, isKillLine, isRiskLine, isRunning, logMs, MiB, RAMP, recordResult, removeScratch, sleep, dumpLogsOnFailure } from '../../helpers/v1.js';

const UNIFIED = '/sys/fs/cgroup/unified';
const hybrid = existsSync(join(UNIFIED, 'cgroup.controllers'));

/** The agent's own unified cgroup dir (where `run` puts its PSI twin), if any. */
function ownUnifiedDir(): string | undefined {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : join(UNIFIED, line.slice(3));
}

const runDirs = (parent: string | undefined) =>
  parent === undefined || !existsSync(parent) ? [] : readdirSync(parent).filter((n) => n.startsWith('headroom-run-'));

describe.skipIf(!hasV1Memory())('cgroup v1: headroom run (needs root and a v1 memory controller)', () => {
  let agent: Agent | undefined;
  let scratch: string | undefined;

  afterEach(async (ctx) => {
    dumpLogsOnFailure(ctx, agent);
    const pid = agent?.proc.pid;
    await agent?.stop();
    agent = undefined;
    removeScratch(scratch);
    scratch = undefined;
    // Safety net only (the test asserts the agent removed them): what this test's agent left behind.
    for (const parent of [ownV1MemoryDir(), hybrid ? ownUnifiedDir() : undefined]) {
      const dir = parent && pid ? join(parent, `headroom-run-${pid}`) : undefined;
      if (!dir || !existsSync(dir)) continue;
      for (let i = 0; i < 100 && existsSync(dir); i++) {
        for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
        }
        try { rmdirSync(dir); } catch { await sleep(50); }
      }
    }
    await removeAllCgroups();
  });

  it('an OOM-killed command: warning before the kill line, exit status 137, its cgroup removed, PSI exported (hybrid)', async () => {
    scratch = diskScratchDir();
    const before = runDirs(ownV1MemoryDir());
    // A ramp into a tight limit, with a page-cache reader beside it so reclaim has work to do (stalls: PSI).
    agent = await startAgent(['run', '--memory', '64M', '--interval', '200ms', '--', '/bin/sh', '-c',
      'dd if=/dev/zero of="$1/f" bs=1M count=96 oflag=direct status=none; (while :; do cat "$1/f" > /dev/null; done) & exec "$2" "$3" --step-mib 1 --every-ms 100 --quiet',
      'sh', scratch, process.execPath, RAMP]);
    const a = agent;
    const c = { container: 'sh' }; // run names the container after the command (basename of argv[0])
    const v1Dir = join(ownV1MemoryDir(), `headroom-run-${a.proc.pid}`);
    expect(existsSync(v1Dir)).toBe(true);

    // Scrape while it runs (the agent exits with the command).
    let scrapes = 0;
    let pressure: Series[] = [];
    let limitSeen: number | undefined;
    let exitCode: number | undefined;
    void a.exited.then((code) => { exitCode = code; });
    while (exitCode === undefined) {
      try {
        const m = await a.metrics();
        scrapes++;
        limitSeen = value(m, 'headroom_memory_limit_bytes', c) ?? limitSeen;
        const p = m.filter((s) => s.name === 'headroom_memory_pressure_seconds_total' && s.labels['container'] === 'sh');
        if (p.length > 0) pressure = p;
      } catch { /* the agent is shutting down */ }
      await sleep(100);
    }
    expect(exitCode).toBe(137);
    expect(await a.exited).toBe(137);

    const warnIdx = firstLog(a.logs, isRiskLine('warning'));
    const killIdx = firstLog(a.logs, isKillLine);
    expect(warnIdx).toBeGreaterThanOrEqual(0);
    expect(killIdx).toBeGreaterThan(warnIdx);
    // Usually one kill (node). Sometimes the kernel kills the page-cache reader too (seen once:
    // oom_kill 2, the shell printed "Killed" for cat): while the first victim's memory is still being
    // reaped, the cgroup can hit its limit again. headroom reports the kernel's count either way:
    // the kill lines add up to the total they report.
    const kills = a.logs.filter(isKillLine);
    expect(kills[0]).toMatchObject({ container: 'sh' });
    expect(kills.reduce((n, l) => n + (l['oom_kills'] as number), 0)).toBe(kills.at(-1)!['oom_kills_total']);
    expect(kills.at(-1)!['oom_kills_total']).toBeGreaterThanOrEqual(1);
    expect((a.logs[warnIdx]!['unreclaimable_bytes'] as number) / (64 * MiB)).toBeGreaterThanOrEqual(0.8);
    expect(a.logs.find((l) => l.msg.startsWith('command exited'))).toMatchObject({ exit_status: 137 });
    expect(limitSeen).toBe(64 * MiB);
    expect(scrapes).toBeGreaterThan(0);

    // The cgroups it made are gone (and its PSI twin in the unified hierarchy).
    expect(existsSync(v1Dir)).toBe(false);
    // none left behind (dirs of other, still running headroom processes sharing this cgroup excepted)
    const othersAlive = (n: string) => before.includes(n) || isRunning(Number(n.slice('headroom-run-'.length)));
    expect(runDirs(ownV1MemoryDir()).filter((n) => !othersAlive(n))).toEqual([]);
    expect(runDirs(ownV1MemoryDir()).filter((n) => n === `headroom-run-${a.proc.pid}`)).toEqual([]);
    if (hybrid) {
      expect(existsSync(join(ownUnifiedDir()!, `headroom-run-${a.proc.pid}`))).toBe(false);
      // PSI: the series exists (it may be small; the kernel only counts real stalls)
      const some = pressure.find((s) => s.labels['kind'] === 'some');
      expect(some, 'headroom_memory_pressure_seconds_total{kind="some"}').toBeDefined();
      expect(some!.value).toBeGreaterThanOrEqual(0);
    }
    recordResult('f-run-oom', {
      exitCode, oomKillsTotal: kills.at(-1)!['oom_kills_total'], leadMsWarningToKillLog: logMs(a.logs[killIdx]!) - logMs(a.logs[warnIdx]!),
      warning: a.logs[warnIdx], kill: a.logs[killIdx], hybrid,
      pressureSeconds: Object.fromEntries(pressure.map((s) => [s.labels['kind'], s.value])),
    });
  });

  it('exits with the command status (7), and removes its cgroup', async () => {
    agent = await startAgent(['run', '--memory', '256M', '--', 'sh', '-c', 'exit 7'], { waitForPort: false });
    expect(await agent.exited).toBe(7);
    const pid = agent.proc.pid;
    expect(agent.logs.find((l) => l.msg.startsWith('command exited'))).toMatchObject({ exit_status: 7 });
    expect(existsSync(join(ownV1MemoryDir(), `headroom-run-${pid}`))).toBe(false);
    if (hybrid) expect(existsSync(join(ownUnifiedDir()!, `headroom-run-${pid}`))).toBe(false);
  });

  it('with --linger, the final counters of a killed command are still served after it exited, then it exits 137', async () => {
    agent = await startAgent(['run', '--memory', '48M', '--interval', '200ms', '--linger', '5s', '--',
      process.execPath, RAMP, '--step-mib', '4', '--every-ms', '50', '--quiet']);
    const a = agent;
    await waitFor('the command to exit', () => a.logs.some((l) => l.msg.startsWith('command exited')), 90_000);
    const m = await a.metrics();
    expect(a.logs.find((l) => l.msg.startsWith('command exited'))).toMatchObject({ exit_status: 137 });
    expect(value(m, 'headroom_oom_kills_total', { container: 'node' })).toBe(1);
    expect(a.logs.filter(isKillLine)).toHaveLength(1);
    expect(await a.exited).toBe(137); // the command's status, after the linger
    expect(existsSync(join(ownV1MemoryDir(), `headroom-run-${a.proc.pid}`))).toBe(false);
  });

  it('SIGTERM during --linger ends it promptly with the command status', async () => {
    agent = await startAgent(['run', '--memory', '64M', '--linger', '60s', '--', 'sh', '-c', 'exit 3']);
    const a = agent;
    await waitFor('the linger to start', () => a.logs.some((l) => l.msg.includes('--linger')), 30_000);
    a.proc.kill('SIGTERM');
    try {
      const code = await Promise.race([a.exited, sleep(15_000).then(() => 'still running 15 s after SIGTERM (linger 60 s)')]);
      expect(code).toBe(3);
    } finally {
      if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGKILL'); // don't wait out the linger
    }
  });

  it('SIGTERM while the command runs is passed on, and then there is no --linger: the pod can stop', async () => {
    agent = await startAgent(['run', '--memory', '64M', '--linger', '60s', '--', 'sleep', '600']);
    const a = agent;
    await waitFor('the command to start', () => a.logs.some((l) => l.msg.startsWith('started')), 30_000);
    a.proc.kill('SIGTERM');
    try {
      const code = await Promise.race([a.exited, sleep(15_000).then(() => 'still running 15 s after SIGTERM (linger 60 s)')]);
      expect(code).toBe(143); // sleep died of the relayed SIGTERM: 128 + 15
      expect(a.logs.some((l) => l.msg.includes('--linger'))).toBe(false);
    } finally {
      if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGKILL');
    }
  });
});
