// The sampler over real captured cgroup files in a temp dir: restarts, monotonic counters, kills,
// a cgroup vanishing, and the trailing-window maxima.
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_RISK } from '../../agent/analysis/risk.js';
import type { Target } from '../../agent/discovery.js';
import type { AgentEvent } from '../../agent/events.js';
import { Sampler } from '../../agent/sampler.js';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'headroom-sampler-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cgroupCopy(rel: string, name: string): string {
  const dir = join(tmp, name);
  cpSync(join(FIX, rel), dir, { recursive: true });
  return dir;
}

const target = (id: string, dir: string): Target => ({
  name: 'app', id, dir, version: 2, limitRoot: undefined, pressureDir: undefined, pids: [], problem: undefined,
});

function setup(initial: Target, declaredLimit?: number, risk = DEFAULT_RISK) {
  let current: Target | undefined = initial;
  let t = 0;
  const events: AgentEvent[] = [];
  const sampler = new Sampler({
    procRoot: join(tmp, 'noproc'), intervalMs: 1000, peakWindowMs: 3000, processIntervalMs: 1e9, topProcesses: 0,
    discoveryIntervalMs: 0, risk, memoryRequest: { container: undefined, bytes: undefined }, declaredLimit,
    discover: async () => ({ targets: current ? [current] : [], errors: [], notes: [] }),
    now: () => t,
  });
  sampler.on((e) => events.push(e));
  return {
    sampler, events,
    set: (x: Target | undefined) => { current = x; },
    tick: async () => { t += 1000; await sampler.tick(); return sampler.status().find((s) => s.name === 'app')!; },
  };
}

describe('sampler', () => {
  it('keeps OOM kills monotonic across a restart and reports only new kills', async () => {
    const a = cgroupCopy('v2/oom', 'a'); // oom_kill 1 before headroom started
    const s = setup(target('a', a));
    let st = await s.tick();
    expect(st.oomKills).toBe(1);
    expect(s.events.filter((e) => e.type === 'oom_kill')).toEqual([]); // history, not news
    expect(st.events).toContainEqual(['max', 35]);

    const b = cgroupCopy('v2/anon', 'b'); // the restarted container: counters from 0
    s.set(target('b', b));
    st = await s.tick();
    // built once per change, not once per metric of a scrape
    expect(s.sampler.status()).toBe(s.sampler.status());
    expect(st.restarts).toBe(1);
    expect(st.oomKills).toBe(1);
    expect(st.events).toContainEqual(['max', 35]);

    writeFileSync(join(b, 'memory.events'), readFileSync(join(b, 'memory.events'), 'utf8').replace('oom_kill 0', 'oom_kill 2').replace(/^max 0$/m, 'max 4'));
    st = await s.tick();
    expect(st.oomKills).toBe(3);
    expect(st.events).toContainEqual(['max', 39]);
    const kill = s.events.find((e) => e.type === 'oom_kill');
    expect(kill).toMatchObject({ type: 'oom_kill', container: 'app', count: 2, total: 3 });
    expect(s.events.map((e) => e.type)).toContain('restart');
  });

  it('a vanished cgroup leaves its gauges absent and keeps its counters', async () => {
    const c = cgroupCopy('v2/oom', 'c');
    const s = setup(target('c', c));
    await s.tick();
    rmSync(c, { recursive: true });
    s.set(undefined);
    const st = await s.tick();
    expect(st.present).toBe(false);
    expect(st.latest).toBeUndefined();
    expect(st.workingSetMax).toBeUndefined();
    expect(st.oomKills).toBe(1);
    expect(s.events.filter((e) => e.type === 'target_gone')).toHaveLength(1);
    expect(s.sampler.readErrors()).toEqual([]); // gone is not an error
  });

  it('window maxima keep a spike between scrapes, and forget it after the window', async () => {
    const d = cgroupCopy('v2/anon', 'd');
    const s = setup(target('d', d));
    await s.tick();
    writeFileSync(join(d, 'memory.current'), String(200 * 1024 * 1024));
    await s.tick();
    writeFileSync(join(d, 'memory.current'), '115163136\n');
    let st = await s.tick();
    expect(st.latest!.view.usage).toBe(115163136);
    expect(st.workingSetMax).toBe(200 * 1024 * 1024 - 7057408);
    await s.tick(); await s.tick(); // the 3 s window moves past the spike
    st = await s.tick();
    expect(st.workingSetMax).toBe(115163136 - 7057408);
  });

  it('computes the time to OOM each tick, raises risk from it with the cause, and drops it on a plateau', async () => {
    const MiB = 1024 * 1024;
    const d = cgroupCopy('v2/anon', 'eta'); // 256 MiB limit, 7 MiB clean page cache
    const s = setup(target('eta', d), undefined, { ...DEFAULT_RISK, etaWindowMs: 10_000 });
    const etas: Array<number | undefined> = [];
    for (let i = 0; i < 12; i++) { // 4 MiB/s, from 103 MiB unreclaimable
      writeFileSync(join(d, 'memory.current'), String(115163136 + i * 4 * MiB));
      const st = await s.tick();
      etas.push(st.eta);
      if (st.eta !== undefined) expect(st.growth).toBeCloseTo(4 * MiB, -3);
    }
    expect(etas.slice(0, 5)).toEqual([undefined, undefined, undefined, undefined, undefined]); // less than half the window
    const defined = etas.filter((e): e is number => e !== undefined);
    expect(defined.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < defined.length; i++) expect(defined[i]).toBeLessThan(defined[i - 1]!);
    const risk = s.events.find((e) => e.type === 'risk');
    expect(risk).toMatchObject({ type: 'risk', from: 'ok', to: 'critical', causes: ['OOM predicted within 60 s at the current growth'] });
    expect(risk!.type === 'risk' && risk!.eta).toBeGreaterThan(0);
    // it holds still: after the window has moved past the rise, no ETA (risk stays up: hysteresis)
    for (let i = 0; i < 10; i++) await s.tick();
    const st = await s.tick();
    expect(st.eta).toBeUndefined();
  });

  it('starts the trend afresh after an OOM kill: no ETA computed across the drop', async () => {
    const MiB = 1024 * 1024;
    const d = cgroupCopy('v2/anon', 'eta-kill');
    const s = setup(target('eta-kill', d), undefined, { ...DEFAULT_RISK, etaWindowMs: 10_000 });
    for (let i = 0; i < 10; i++) {
      writeFileSync(join(d, 'memory.current'), String(115163136 + i * 8 * MiB));
      await s.tick();
    }
    expect((await s.tick()).eta).toBeGreaterThan(0);
    // The kernel kills the leaking child: its memory is gone, the counter moves.
    const events = readFileSync(join(d, 'memory.events'), 'utf8');
    writeFileSync(join(d, 'memory.events'), events.replace(/^oom_kill \d+$/m, 'oom_kill 1'));
    writeFileSync(join(d, 'memory.current'), String(60 * MiB));
    const after: Array<number | undefined> = [];
    for (let i = 0; i < 4; i++) after.push((await s.tick()).eta);
    expect(s.events.filter((e) => e.type === 'oom_kill')).toHaveLength(1);
    expect(after).toEqual([undefined, undefined, undefined, undefined]);
    // a new rise after the kill is predicted again once it spans half the window
    for (let i = 1; i <= 8; i++) {
      writeFileSync(join(d, 'memory.current'), String(60 * MiB + i * 8 * MiB));
      await s.tick();
    }
    expect((await s.tick()).eta).toBeGreaterThan(0);
  });

  it('counts a malformed file as a read error for that container and source', async () => {
    const e = cgroupCopy('v2/anon', 'e');
    writeFileSync(join(e, 'memory.stat'), 'anon x\n');
    const s = setup(target('e', e));
    const st = await s.tick();
    expect(st.latest).toBeUndefined();
    expect(s.sampler.readErrors()).toEqual([{ container: 'app', source: 'memory.stat', count: 1 }]);
    expect(s.sampler.ready).toBe(true); // a bad file never stops sampling
  });

  it('says once when the pod spec limit (downward API) differs from the kernel limit', async () => {
    const f = cgroupCopy('v2/anon', 'f'); // memory.max 256 MiB
    const s = setup(target('f', f), 512 * 1024 * 1024);
    await s.tick(); await s.tick();
    const notes = s.events.filter((e) => e.type === 'note').map((e) => (e as { message: string }).message);
    expect(notes).toEqual(['container app: the pod spec says limits.memory 512 MiB, the kernel enforces a cgroup limit of 256 MiB (a pod-level limit, a pending resize, or no limit set); headroom uses the kernel\'s']);
    const g = cgroupCopy('v2/anon', 'g');
    const same = setup(target('g', g), 268435456);
    await same.tick();
    expect(same.events.filter((e) => e.type === 'note')).toEqual([]);
  });
});
