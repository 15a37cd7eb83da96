import { describe, expect, it } from 'vitest';
import { parseFlatKeyed, parseKbLines, parseLimit, parseSingleValue } from '../../agent/sources/parse.js';
import { parsePressure } from '../../agent/sources/pressure.js';
import { parseProcCgroup, outsideNamespace } from '../../agent/sources/cgroup.js';
import { parseProcStat, parseSmapsRollup, parseStatusMemory, isKernelThread } from '../../agent/sources/procfs.js';
import { ParseError } from '../../agent/sources/read.js';

describe('parseLimit', () => {
  it.each([
    ['max\n', undefined],
    ['268435456\n', 268435456],
    ['9223372036854771712\n', undefined], // v1 PAGE_COUNTER_MAX * 4096: unlimited
    ['0\n', 0],
  ])('%j -> %s', (text, want) => {
    expect(parseLimit(text, 'memory.max')).toBe(want);
  });

  it.each(['', 'lots\n', '-1\n', '12 34\n', '0x10\n'])('%j is a clear error naming the file', (text) => {
    expect(() => parseLimit(text, '/x/memory.max')).toThrow(ParseError);
    expect(() => parseLimit(text, '/x/memory.max')).toThrow(/\/x\/memory\.max/);
  });
});

describe('parseSingleValue', () => {
  it('reads one integer with a trailing newline', () => {
    expect(parseSingleValue('123456\n', 'memory.current')).toBe(123456);
  });
  it('rejects a truncated (empty) file', () => {
    expect(() => parseSingleValue('', 'memory.current')).toThrow(/memory\.current line 1: file is empty/);
  });
});

describe('parseFlatKeyed', () => {
  it('parses memory.events', () => {
    const m = parseFlatKeyed('low 0\nhigh 3\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n', 'memory.events');
    expect(Object.fromEntries(m)).toEqual({ low: 0, high: 3, max: 17, oom: 2, oom_kill: 1, oom_group_kill: 0 });
  });
  it('names the line of a malformed entry', () => {
    expect(() => parseFlatKeyed('anon 1\nfile\n', 'memory.stat')).toThrow(/memory\.stat line 2/);
    expect(() => parseFlatKeyed('anon 1\nfile x\n', 'memory.stat')).toThrow(/line 2: expected a non-negative integer/);
  });
  it('an empty file is an error, not an empty map', () => {
    expect(() => parseFlatKeyed('\n', 'memory.stat')).toThrow(/file is empty/);
  });
});

describe('parsePressure', () => {
  it('parses some and full with totals in microseconds', () => {
    const p = parsePressure('some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=789\n', 'memory.pressure');
    expect(p.some).toEqual({ avg10: 1.5, avg60: 0.2, avg300: 0, totalUs: 123456 });
    expect(p.full?.totalUs).toBe(789);
  });
  it('accepts a file with only "some"', () => {
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n', 'cpu.pressure').full).toBeUndefined();
  });
  it.each([
    ['full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n', /no "some" line/],
    ['some avg10=0.00 avg60=0.00 total=1\n', /missing or bad avg300/],
    ['some avg10=x avg60=0.00 avg300=0.00 total=1\n', /missing or bad avg10/],
    ['weird avg10=0\n', /unknown PSI line/],
  ])('%j -> error', (text, msg) => {
    expect(() => parsePressure(text, 'memory.pressure')).toThrow(msg);
  });
});

describe('/proc/PID/cgroup', () => {
  it('parses a hybrid host (v1 controllers plus the unified line)', () => {
    const pc = parseProcCgroup('9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/x\n0::/\n', 'cgroup');
    expect(pc.unified).toBe('/');
    expect(pc.v1.get('memory')).toBe('/process_api/abc');
    expect(pc.v1.get('cpuacct')).toBe('/x');
  });
  it('parses a v2 path outside the reader namespace, and keeps colons in paths', () => {
    const pc = parseProcCgroup('0::/../cri-containerd-1:2\n', 'cgroup');
    expect(pc.unified).toBe('/../cri-containerd-1:2');
    expect(outsideNamespace(pc.unified!)).toBe(true);
    expect(outsideNamespace('/kubepods/x')).toBe(false);
  });
  it('rejects a line without two colons', () => {
    expect(() => parseProcCgroup('garbage\n', '/proc/1/cgroup')).toThrow(/\/proc\/1\/cgroup line 1/);
  });
});

describe('/proc/PID/stat', () => {
  it('handles a comm with spaces and parentheses', () => {
    const s = parseProcStat('42 (my (weird) app) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 9876 1000 250 18446744073709551615\n', 'stat');
    expect(s).toMatchObject({ pid: 42, comm: 'my (weird) app', state: 'S', ppid: 1, flags: 4194560, startTime: 9876, rssPages: 250 });
    expect(isKernelThread(s)).toBe(false);
  });
  it('recognises kernel threads by PF_KTHREAD', () => {
    const s = parseProcStat('2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0 18446744073709551615\n', 'stat');
    expect(isKernelThread(s)).toBe(true);
  });
  it('rejects a truncated file', () => {
    expect(() => parseProcStat('42 (app) S 1', 'stat')).toThrow(/field 9 missing/);
  });
});

describe('smaps_rollup and status', () => {
  const rollup = 'aaa-bbb ---p 00000000 00:00 0 [rollup]\nRss:  1764 kB\nPss:  629 kB\nShared_Clean: 1572 kB\nShared_Dirty: 0 kB\nPrivate_Clean: 80 kB\nPrivate_Dirty: 112 kB\nSwap: 4 kB\nPrivate_Hugetlb: 0 kB\n';
  it('computes USS as private clean + dirty, in bytes', () => {
    expect(parseSmapsRollup(rollup, 'smaps_rollup')).toEqual({ rss: 1764 * 1024, pss: 629 * 1024, uss: 192 * 1024, swap: 4 * 1024 });
  });
  it('status gives VmRSS and VmSwap; kernel threads have no VmRSS (absent, not 0)', () => {
    expect(parseStatusMemory('Name:\tnode\nVmRSS:\t  2048 kB\nVmSwap:\t 0 kB\n', 'status')).toEqual({ name: 'node', rss: 2097152, pss: undefined, uss: undefined, swap: 0 });
    expect(parseStatusMemory('Name:\tkworker/0:1\nState:\tI (idle)\n', 'status').rss).toBeUndefined();
  });
  it('parseKbLines skips lines that are not "Key: N [kB]"', () => {
    expect(Object.fromEntries(parseKbLines('Name:\tx\nThreads:\t3\nVmRSS:\t1 kB\n'))).toEqual({ Threads: 3, VmRSS: 1024 });
  });
});
