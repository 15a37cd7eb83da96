// Real cgroup v1: a child process is OOM-killed while the container's main process lives on.
// The container does not restart, so kubectl shows nothing (kubernetes#78973); headroom must count it.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/agent.js';
import { hasV1Memory, makeCgroup, ownV1MemoryDir } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { exitOf, firstLog, isKillLine, isRiskLine, isRunning, MiB, RAMP, readKernelV1, recordResult, sleep, v1Session } from '../../helpers/v1.js';

describe.skipIf(!hasV1Memory())('cgroup v1: child OOM-killed, parent lives (needs root and a v1 memory controller)', () => {
  const session = v1Session();

  it('counts the kill of a leaking child while PID 1 (a shell) stays alive', async () => {
    const limit = 80 * MiB;
    const cg = makeCgroup(ownV1MemoryDir(), 'hr-child-oom', 1, limit);
    const a = await session.start(['--cgroup', cg.dir, '--container', 'app', '--interval', '200ms']);
    const c = { container: 'app' };
    await waitFor('the first sample', async () => value(await a.metrics(), 'headroom_oom_kills_total', c) === 0);

    // "PID 1" of the container: a shell that runs a leaking worker and carries on when it dies.
    const parent = cg.spawn('/bin/sh', ['-c',
      '"$1" "$2" --step-mib 1 --every-ms 100 --quiet; echo "child-died status=$?"; exec sleep 600',
      'sh', process.execPath, RAMP], { stdio: 'pipe' });
    const parentExit = exitOf(parent);
    let out = '';
    parent.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });

    await waitFor('the child to die', () => out.includes('child-died'), 90_000);
    await waitFor('the OOM kill log line', () => a.logs.some(isKillLine), 30_000);

    // The child died of SIGKILL (sh reports 128+9) and the parent is still running, in the cgroup.
    expect(out).toContain('child-died status=137');
    await sleep(300);
    expect(isRunning(parent.pid!)).toBe(true);
    expect(parent.exitCode).toBeNull();
    expect(cg.pids()).toEqual([parent.pid]);

    const k = readKernelV1(cg.dir);
    expect(k.oomKill).toBe(1);
    const m = await waitFor('oom_kills_total 1', async () => {
      const s = await a.metrics();
      return value(s, 'headroom_oom_kills_total', c) === 1 ? s : undefined;
    });
    expect(value(m, 'headroom_oom_kills_total', c)).toBe(k.oomKill);
    // The container is still there: its gauges are exported, no restart, no "gone".
    expect(value(m, 'headroom_memory_usage_bytes', c)).toBeGreaterThan(0);
    expect(value(m, 'headroom_target_readable', c)).toBe(1);
    expect(value(m, 'headroom_container_restarts_total', c)).toBe(0);
    expect(a.logs.some((l) => l.msg.includes('cgroup is gone'))).toBe(false);

    const kill = a.logs[firstLog(a.logs, isKillLine)]!;
    expect(kill).toMatchObject({ level: 'error', container: 'app', oom_kills: 1, oom_kills_total: 1 });
    expect(kill.msg).toMatch(/OOM-killed 1 process/);
    expect(a.logs.filter(isKillLine)).toHaveLength(1);
    // and it was announced first
    const warn = firstLog(a.logs, isRiskLine('warning'));
    expect(warn).toBeGreaterThanOrEqual(0);
    expect(warn).toBeLessThan(firstLog(a.logs, isKillLine));

    recordResult('d-child-oom', { limit, parentOutput: out.trim(), kernelOomKill: k.oomKill, killLine: kill, usageAfter: value(m, 'headroom_memory_usage_bytes', c) });
    parent.kill('SIGKILL');
    await parentExit;
  });
});
