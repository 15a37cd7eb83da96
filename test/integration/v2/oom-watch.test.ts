// An OOM-killed container's cgroup is often removed before the next sample (Netdata found the
// leaf oom_kill "not reliably alertable"). headroom watches memory.events (the kernel signals every
// change) and reads it at once. Here the sampling interval is one hour, so only the watch can count
// the kill; the cgroup is removed right after the kill, as a container runtime does.
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, waitFor, REPO, type Agent } from '../../helpers/agent.js';
import { isV2Vm, makeCgroup, removeAllCgroups } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';

let agent: Agent | undefined;
afterAll(async () => {
  await agent?.stop();
  await removeAllCgroups();
});

describe.skipIf(!isV2Vm())('cgroup v2: OOM kill counted although the cgroup vanishes before the next sample', () => {
  it('counts the kill from the memory.events watch, with sampling every hour', async () => {
    const cg = makeCgroup('/sys/fs/cgroup', 'oomwatch', 2, 48 * 1024 * 1024);
    agent = await startAgent(['--cgroup', cg.dir, '--container', 'app', '--interval', '1h', '--peak-window', '1h', '--eta-window', '4h', '--discovery-interval', '1h']);
    await waitFor('the first sample', async () => value(await agent!.metrics(), 'headroom_memory_usage_bytes', { container: 'app' }) !== undefined);
    expect(value(await agent.metrics(), 'headroom_oom_kills_total', { container: 'app' })).toBe(0);

    const leak = cg.spawn(process.execPath, [`${REPO}scripts/workloads/ramp.mjs`, '--step-mib', '4', '--every-ms', '20', '--quiet']);
    const signal = await new Promise<string | null>((resolve) => leak.once('exit', (_c, s) => resolve(s)));
    expect(signal).toBe('SIGKILL');
    const kernelKills = /oom_kill (\d+)/.exec(cg.read('memory.events'))![1];
    await cg.remove(); // the runtime removes the container's cgroup right away

    expect(kernelKills).toBe('1');
    const kills = await waitFor('the watched kill', async () => {
      const v = value(await agent!.metrics(), 'headroom_oom_kills_total', { container: 'app' });
      return v === 1 ? v : undefined;
    }, 60_000);
    expect(kills).toBe(1);
    expect(agent.logs.some((l) => l.level === 'error' && /OOM-killed 1 process/.test(l.msg))).toBe(true);
  });
});
