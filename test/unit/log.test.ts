import { describe, expect, it } from 'vitest';
import { createLogger, humanBytes } from '../../agent/log.js';
import { describeMemory } from '../../agent/sinks/describe.js';
import { logSink } from '../../agent/sinks/log.js';
import { memoryView } from '../../agent/analysis/memory.js';

const MiB = 1024 * 1024;

describe('log lines', () => {
  it('a risk change reads in plain words and carries numbers as numbers', () => {
    const lines: string[] = [];
    const sink = logSink(createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l), now: () => 0 }));
    const view = memoryView({ version: 2, usage: 243 * MiB, limit: 256 * MiB, stat: new Map([['anon', 231 * MiB], ['file', 12 * MiB], ['shmem', 0], ['file_dirty', 0], ['file_writeback', 0], ['inactive_file', 10 * MiB]]) });
    sink({ type: 'risk', container: 'app', from: 'warning', to: 'critical', view });
    const j = JSON.parse(lines[0]!);
    expect(j.msg).toBe('OOM risk critical: container app: unreclaimable 231 MiB of 256 MiB limit (90%), page cache 12 MiB is not counted');
    expect(j).toMatchObject({ level: 'warn', container: 'app', risk: 'critical', previous: 'warning', unreclaimable_bytes: 231 * MiB, limit_bytes: 256 * MiB });
  });

  it('a risk change from the trend says how fast it grows, when the OOM comes, and why', () => {
    const lines: string[] = [];
    const sink = logSink(createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l), now: () => 0 }));
    const view = memoryView({ version: 2, usage: 243 * MiB, limit: 256 * MiB, stat: new Map([['anon', 231 * MiB], ['file', 12 * MiB], ['shmem', 0], ['file_dirty', 0], ['file_writeback', 0], ['inactive_file', 10 * MiB]]) });
    sink({ type: 'risk', container: 'app', from: 'warning', to: 'critical', view, eta: 40.2, slope: 12 * MiB, causes: ['OOM predicted within 60 s at the current growth'] });
    const j = JSON.parse(lines[0]!);
    expect(j.msg).toBe('OOM risk critical: container app: unreclaimable 231 MiB of 256 MiB limit (90%), growing 12 MiB/s, OOM in ~40 s at this rate; page cache 12 MiB is not counted (OOM predicted within 60 s at the current growth)');
    expect(j).toMatchObject({ eta_seconds: 40, growth_bytes_per_second: 12 * MiB, cause: 'OOM predicted within 60 s at the current growth' });
  });

  it('rate-limits a repeating failure and says how many lines it held back', () => {
    let t = 0;
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'info', write: (l) => lines.push(l), now: () => t });
    for (let i = 0; i < 5; i++) { log.rateLimited('k', 1000, 'warn', 'cannot read x'); t += 100; }
    t = 2000;
    log.rateLimited('k', 1000, 'warn', 'cannot read x');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/suppressed=4/);
  });

  it('drops lines below the level', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'warn', write: (l) => lines.push(l) });
    log.info('x'); log.debug('y'); log.error('z');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['z']);
  });

  it.each([[512, '512 B'], [2048, '2 KiB'], [231 * MiB, '231 MiB'], [1.5 * 1024 * MiB, '1.5 GiB']])('humanBytes(%d)', (n, s) => {
    expect(humanBytes(n)).toBe(s);
  });
});

describe('describeMemory', () => {
  const MiB = 1024 * 1024;
  const v = (reclaimable: number) => ({ unreclaimable: 68 * MiB, limit: 256 * MiB, pageCache: reclaimable, reclaimable });
  it('names the page cache that is not counted, but not a few KiB of it', () => {
    expect(describeMemory('app', v(40 * MiB))).toBe('container app: unreclaimable 68 MiB of 256 MiB limit (27%), page cache 40 MiB is not counted');
    expect(describeMemory('app', v(4096))).toBe('container app: unreclaimable 68 MiB of 256 MiB limit (27%)');
    expect(describeMemory('app', v(4096), { eta: 93, slope: 2 * MiB })).toBe('container app: unreclaimable 68 MiB of 256 MiB limit (27%), growing 2 MiB/s, OOM in ~93 s at this rate');
  });
});
