// Pre-OOM capture: the episode rule, the bounded directory, which process may get the signal
// (SigCgt), the URL download against a real local HTTP server, the flags, and the Capturer as a whole
// with a fake /proc tree and an injected kill.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../agent/capture/capturer.js';
import { listCaptures, overCap, prune, waitForNewFile, type CaptureFile } from '../../agent/capture/dir.js';
import { NO_EPISODE, onRiskChange, type EpisodeState } from '../../agent/capture/policy.js';
import { pickProcess, signalNumber } from '../../agent/capture/signal.js';
import { captureName, download, safeUrl } from '../../agent/capture/url.js';
import { ConfigError, parseCli, type CaptureConfig } from '../../agent/config.js';
import { catches, parseCaughtSignals } from '../../agent/sources/procfs.js';
import { captureLog, MiB, risk } from '../helpers/notify.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'headroom-capture-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A file with a given size and age (seconds before now). */
function put(dir: string, name: string, bytes: number, ageS: number): void {
  writeFileSync(join(dir, name), Buffer.alloc(bytes, 7));
  const t = Date.now() / 1000 - ageS;
  utimesSync(join(dir, name), t, t);
}

/** A fake /proc/PID with stat (start time) and status (SigCgt). */
function proc(root: string, pid: number, comm: string, start: number, sigCgt: string): void {
  mkdirSync(join(root, String(pid)), { recursive: true });
  writeFileSync(join(root, String(pid), 'stat'), `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 100 0\n`);
  writeFileSync(join(root, String(pid), 'status'), `Name:\t${comm}\nState:\tS (sleeping)\nSigQ:\t0/96369\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t${sigCgt}\n`);
}
// Read off this machine: `node` catches SIGUSR1 (inspector) but not SIGUSR2; with
// --heapsnapshot-signal=SIGUSR2 it catches both.
const NODE_PLAIN = '0000000100004602';
const NODE_HEAPSNAPSHOT = '0000000100004e02';
const SH = '0000000000010002';

describe('capture: once per episode', () => {
  const step = (s: EpisodeState, to: 'ok' | 'warning' | 'critical', t: number, on: 'warning' | 'critical' = 'warning') => onRiskChange(s, to, on, t, 600_000);

  it('captures at the first rise to the level, not again within the episode', () => {
    const a = step(NO_EPISODE, 'warning', 1000);
    expect(a.capture).toBe(true);
    const b = step(a.state, 'critical', 2000);
    expect(b.capture).toBe(false);
    const c = step(b.state, 'warning', 3000);
    expect(c.capture).toBe(false);
    expect(c.state).toEqual({ active: true, lastCaptureAt: 1000 });
  });

  it('--capture-on critical: a warning alone captures nothing', () => {
    const a = step(NO_EPISODE, 'warning', 1000, 'critical');
    expect(a).toEqual({ capture: false, state: NO_EPISODE });
    const b = step(a.state, 'critical', 2000, 'critical');
    expect(b.capture).toBe(true);
  });

  it('back to ok ends the episode; a new one captures again after the cool-down, not before', () => {
    const a = step(NO_EPISODE, 'warning', 0);
    const ok = step(a.state, 'ok', 60_000);
    expect(ok.state).toEqual({ active: false, lastCaptureAt: 0 });
    const early = step(ok.state, 'warning', 120_000);
    expect(early).toMatchObject({ capture: false, skipped: 'cooldown', state: { active: true, lastCaptureAt: 0 } });
    // that early episode counts as handled: its later moves are not new skips
    expect(step(early.state, 'critical', 130_000)).toEqual({ capture: false, state: early.state });
    const ok2 = step(early.state, 'ok', 200_000);
    const late = step(ok2.state, 'critical', 600_000);
    expect(late).toEqual({ capture: true, state: { active: true, lastCaptureAt: 600_000 } });
  });
});

describe('capture: the bounded directory', () => {
  const f = (name: string, bytes: number, mtime: number): CaptureFile => ({ name, path: `/x/${name}`, bytes, mtime });

  it('keeps the newest files within both caps', () => {
    const files = [f('e', 10, 5), f('d', 10, 4), f('c', 50, 3), f('b', 10, 2), f('a', 10, 1)];
    expect(overCap(files, 3, 1000).map((x) => x.name)).toEqual(['b', 'a']);
    // c does not fit beside e and d within 60 bytes: it and everything older go, although b would fit
    expect(overCap(files, 10, 60).map((x) => x.name)).toEqual(['c', 'b', 'a']);
    expect(overCap(files, 1, 5).map((x) => x.name)).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(overCap([], 1, 1)).toEqual([]);
  });

  it('prune deletes oldest first, ignores hidden files and directories, and says what it kept', async () => {
    const d = scratch();
    put(d, 'old.heapsnapshot', 1000, 300);
    put(d, 'mid.heapsnapshot', 1000, 200);
    put(d, 'new.heapsnapshot', 1000, 100);
    put(d, '.partial-1-x', 5000, 400);
    mkdirSync(join(d, 'sub'));
    const r = await prune(d, 2, 10_000);
    expect(r.removed.map((x) => x.name)).toEqual(['old.heapsnapshot']);
    expect(r).toMatchObject({ kept: 2, keptBytes: 2000, errors: [] });
    expect(readdirSync(d).sort()).toEqual(['.partial-1-x', 'mid.heapsnapshot', 'new.heapsnapshot', 'sub']);
    expect((await prune(d, 2, 1500)).removed.map((x) => x.name)).toEqual(['mid.heapsnapshot']);
    expect(await listCaptures(join(d, 'missing'))).toEqual([]);
  });

  it('waitForNewFile returns a file that appeared after the trigger once its size settled, not an older one', async () => {
    const d = scratch();
    put(d, 'before.heapsnapshot', 100, 600);
    const since = Date.now();
    const writer = (async () => {
      for (let i = 1; i <= 4; i++) {
        writeFileSync(join(d, 'Heap.1.heapsnapshot'), Buffer.alloc(i * 1000));
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    const got = await waitForNewFile(d, since, 10_000, 20);
    await writer;
    expect(got?.file.name).toBe('Heap.1.heapsnapshot');
    expect(got?.file.bytes).toBe(4000);
    expect(got?.settled).toBe(true);
    expect(await waitForNewFile(scratch(), Date.now(), 100, 20)).toBeUndefined();
    // time up (or stopped) before it settled: the file as it is, not settled
    const e = scratch();
    writeFileSync(join(e, 'Heap.2.heapsnapshot'), '');
    expect(await waitForNewFile(e, since, 100, 20)).toMatchObject({ file: { name: 'Heap.2.heapsnapshot', bytes: 0 }, settled: false });
  });
});

describe('capture: which process gets the signal', () => {
  it('reads SigCgt: node with --heapsnapshot-signal=SIGUSR2 catches SIGUSR2, plain node does not', () => {
    const usr2 = signalNumber('SIGUSR2');
    expect(usr2).toBe(12);
    expect(catches(BigInt(`0x${NODE_HEAPSNAPSHOT}`), usr2)).toBe(true);
    expect(catches(BigInt(`0x${NODE_PLAIN}`), usr2)).toBe(false);
    expect(catches(BigInt(`0x${NODE_PLAIN}`), signalNumber('SIGUSR1'))).toBe(true);
    expect(parseCaughtSignals('Name:\tx\nSigCgt:\t0000000000000800\n', 'p')).toBe(0x800n);
    expect(() => parseCaughtSignals('Name:\tx\n', '/proc/1/status')).toThrow(/no SigCgt line/);
  });

  it('the earliest-started process that catches it; a shell wrapper before it is passed over; vanished PIDs are skipped', async () => {
    const root = scratch();
    proc(root, 10, 'sh', 100, SH);
    proc(root, 11, 'node', 105, NODE_HEAPSNAPSHOT);
    proc(root, 12, 'node', 103, NODE_PLAIN);
    proc(root, 13, 'node', 200, NODE_HEAPSNAPSHOT);
    const r = await pickProcess(root, [10, 11, 12, 13, 99], 'SIGUSR2');
    expect(r.target).toEqual({ pid: 11, comm: 'node' });
    expect(r.notCatching).toEqual([{ pid: 10, comm: 'sh' }, { pid: 12, comm: 'node' }]);
    expect(r.problems).toEqual([]);
    const none = await pickProcess(root, [10, 12], 'SIGUSR2');
    expect(none.target).toBeUndefined();
  });
});

describe('capture: URL download', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/debug/pprof/heap')) { res.setHeader('content-type', 'application/octet-stream'); res.end(Buffer.alloc(3000, 1)); return; }
      if (req.url === '/big') { res.setHeader('content-length', '5000'); res.end(Buffer.alloc(5000)); return; }
      if (req.url === '/stream') { // no content-length: the cap must cut it while streaming
        res.write(Buffer.alloc(3000));
        setTimeout(() => res.end(Buffer.alloc(3000)), 20);
        return;
      }
      if (req.url === '/slow') { setTimeout(() => res.end('late'), 3000); return; }
      if (req.url === '/stats.json') { res.setHeader('content-type', 'application/json'); res.end('{"a":1}'); return; }
      res.statusCode = 404;
      res.end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => { server.closeAllConnections(); server.close(); });

  it('names the file by container, UTC time and URL, and never logs a query string or credentials', () => {
    const t = new Date('2026-12-04T18:30:12.345Z');
    expect(captureName('app', 'http://x:6060/debug/pprof/heap?gc=1', 'application/octet-stream', t)).toBe('app-20261204T183012Z-heap.bin');
    expect(captureName('app', 'http://x/stats.json', 'application/json', t)).toBe('app-20261204T183012Z-stats.json');
    expect(captureName('a/b', 'http://x/', 'text/plain', t)).toBe('a_b-20261204T183012Z-capture.txt');
    expect(safeUrl('http://user:secret@x:1/p?token=abc')).toBe('http://x:1/p');
  });

  it('saves the body completely, then renames it into place', async () => {
    const d = scratch();
    const r = await download(`${base}/debug/pprof/heap?gc=1`, d, 'app', 10_000, 5000, new Date('2026-12-04T00:00:00Z'));
    expect(r).toEqual({ path: join(d, 'app-20261204T000000Z-heap.bin'), bytes: 3000 });
    expect(readFileSync(r.path)).toEqual(Buffer.alloc(3000, 1));
    expect(readdirSync(d)).toEqual(['app-20261204T000000Z-heap.bin']);
  });

  it('the Capturer with --capture-url: one file per episode in the directory, logged without the query string, counted', async () => {
    const d = scratch();
    const { log, lines } = captureLog();
    const c = new Capturer({
      config: { on: 'critical', signal: undefined, url: `${base}/debug/pprof/heap?token=s3cret`, dir: d, maxFiles: 2, maxBytes: MiB, timeoutMs: 5000 },
      log, procRoot: '/nonexistent', lookup: () => ({ dir: undefined, pids: [] }),
    });
    c.listener(risk('app', 'ok', 'warning', 210)); // below --capture-on
    await c.idle();
    expect(readdirSync(d)).toEqual([]);
    c.listener(risk('app', 'warning', 'critical', 240));
    c.listener(risk('app', 'critical', 'warning', 220));
    c.listener(risk('app', 'warning', 'critical', 245));
    await c.idle();
    const files = readdirSync(d);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^app-\d{8}T\d{6}Z-heap\.bin$/);
    const saved = lines.find((l) => l['capture'] === 'url');
    expect(saved?.['msg']).toBe(`capture: saved 3 KiB from ${base}/debug/pprof/heap to ${join(d, files[0]!)}`);
    expect(JSON.stringify(lines)).not.toContain('s3cret');
    expect(c.stats()).toEqual([{ container: 'app', method: 'url', result: 'ok', count: 1 }]);
  });

  it('over the byte cap (declared or streamed), non-2xx, refused, or too slow: an error, and nothing left behind', async () => {
    const d = scratch();
    await expect(download(`${base}/big`, d, 'app', 4000, 5000)).rejects.toThrow(/5000 bytes, more than --capture-max-bytes 4000/);
    await expect(download(`${base}/stream`, d, 'app', 4000, 5000)).rejects.toThrow(/grew past --capture-max-bytes 4000; discarded/);
    await expect(download(`${base}/nope`, d, 'app', 4000, 5000)).rejects.toThrow(/^HTTP 404 Not Found$/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(download(`http://127.0.0.1:${port}/heap`, d, 'app', 4000, 5000)).rejects.toThrow(/^ECONNREFUSED$/);
    await expect(download(`${base}/slow`, d, 'app', 4000, 1000)).rejects.toThrow(/within 1s/);
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('capture: flags', () => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = parseCli(argv, env);
    if (r.kind !== 'run') throw new Error('expected a config');
    return r.config;
  };
  it('off unless a signal or URL is given; defaults otherwise', () => {
    expect(cfg([]).capture).toBeUndefined();
    expect(cfg(['--capture-signal', 'usr2']).capture).toEqual({
      on: 'warning', signal: 'SIGUSR2', url: undefined, dir: undefined, maxFiles: 5, maxBytes: 512 * MiB, timeoutMs: 60_000,
    });
    expect(cfg([], { HEADROOM_CAPTURE_URL: 'http://localhost:6060/debug/pprof/heap', HEADROOM_CAPTURE_DIR: 'caps', HEADROOM_CAPTURE_ON: 'warning' }).capture)
      .toMatchObject({ on: 'warning', url: 'http://localhost:6060/debug/pprof/heap', dir: join(process.cwd(), 'caps') });
  });
  it('clear errors for what cannot work', () => {
    const bad: Array<[string[], RegExp]> = [
      [['--capture-signal', 'SIGKILL'], /SIGKILL: it cannot be caught/],
      [['--capture-signal', 'STOP'], /SIGSTOP: it cannot be caught/],
      [['--capture-signal', 'SIGFOO'], /invalid --capture-signal "SIGFOO": expected a signal name like SIGUSR2/],
      [['--capture-url', 'http://x/heap'], /--capture-url needs --capture-dir/],
      [['--capture-url', 'file:///etc/passwd', '--capture-dir', '/tmp/c'], /expected an http:\/\/ or https:\/\/ URL/],
      [['--capture-dir', '/tmp/c'], /--capture-dir needs --capture-signal or --capture-url/],
      [['--capture-signal', 'USR2', '--capture-on', 'ok'], /invalid --capture-on "ok": expected warning or critical/],
      [['--capture-signal', 'USR2', '--capture-max-files', '0'], /--capture-max-files 0: must be between 1 and 10000/],
      [['--capture-signal', 'USR2', '--capture-timeout', '10ms'], /--capture-timeout 10ms: must be at least 1s/],
    ];
    for (const [argv, msg] of bad) {
      expect(() => cfg(argv), argv.join(' ')).toThrow(ConfigError);
      expect(() => cfg(argv), argv.join(' ')).toThrow(msg);
    }
  });
});

describe('Capturer', () => {
  const base: CaptureConfig = { on: 'warning', signal: 'SIGUSR2', url: undefined, dir: undefined, maxFiles: 3, maxBytes: 10 * MiB, timeoutMs: 2000 };
  let root: string;

  function make(config: Partial<CaptureConfig>, opts: { kill?: (pid: number, s: NodeJS.Signals) => void; now?: () => number } = {}) {
    root = scratch();
    proc(root, 7, 'sh', 10, SH);
    proc(root, 8, 'node', 11, NODE_HEAPSNAPSHOT);
    const { log, lines } = captureLog();
    const sent: Array<[number, string]> = [];
    const c = new Capturer({
      config: { ...base, ...config }, log, procRoot: root, pollMs: 20, ...(opts.now ? { now: opts.now } : {}),
      lookup: (name) => (name === 'app' ? { dir: undefined, pids: [7, 8] } : name === 'shell' ? { dir: undefined, pids: [7] } : undefined),
      kill: opts.kill ?? ((pid, s) => { sent.push([pid, s]); }),
    });
    return { c, lines, sent };
  }

  it('one signal per episode, to the process that catches it, counted', async () => {
    const { c, lines, sent } = make({});
    c.listener(risk('app', 'ok', 'warning', 210));
    c.listener(risk('app', 'warning', 'critical', 240));
    await c.idle();
    expect(sent).toEqual([[8, 'SIGUSR2']]);
    expect(lines.find((l) => l['capture'] === 'signal')?.['msg']).toBe('capture: sent SIGUSR2 to pid 8 (node) in container app');
    expect(c.last('app')).toMatchObject({ risk: 'warning', results: { signal: 'ok' } });
    expect(c.last('other')).toBeUndefined();
    expect(c.stats()).toEqual([{ container: 'app', method: 'signal', result: 'ok', count: 1 }]);
  });

  it('nobody catches it: not sent, skipped, and the log names the processes and the danger', async () => {
    const { c, lines, sent } = make({});
    c.listener(risk('shell', 'ok', 'critical', 250));
    await c.idle();
    expect(sent).toEqual([]);
    expect(lines.find((l) => l['capture'] === 'signal')?.['msg'])
      .toBe('capture: SIGUSR2 not sent to container shell: none of its processes catches it (7 (sh)), and an uncaught SIGUSR2 would kill the app');
    expect(c.stats()).toEqual([{ container: 'shell', method: 'signal', result: 'skipped', count: 1 }]);
  });

  it('EPERM: failed, with what to change', async () => {
    const { c, lines } = make({}, { kill: () => { throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' }); } });
    c.listener(risk('app', 'ok', 'warning', 210));
    await c.idle();
    expect(lines.find((l) => l['capture'] === 'signal')?.['msg']).toMatch(/cannot send SIGUSR2 to pid 8 \(node\) in container app: permission denied: run headroom as the app's UID/);
    expect(c.stats()).toEqual([{ container: 'app', method: 'signal', result: 'failed', count: 1 }]);
  });

  it('a repeat episode within the cool-down is skipped and said so', async () => {
    let t = 0;
    const { c, lines, sent } = make({}, { now: () => t });
    c.listener(risk('app', 'ok', 'warning', 210));
    await c.idle();
    t = 60_000;
    c.listener(risk('app', 'warning', 'ok', 100));
    c.listener(risk('app', 'ok', 'warning', 210));
    await c.idle();
    expect(sent).toHaveLength(1);
    expect(lines.some((l) => String(l['msg']).includes('again within 10 min of the last capture'))).toBe(true);
    expect(c.last('app')).toEqual({ at: 0, risk: 'warning', results: { signal: 'ok' } }); // the skipped episode leaves the last capture as it was
    expect(c.stats()).toContainEqual({ container: 'app', method: 'signal', result: 'skipped', count: 1 });
  });

  it('signal with a directory: waits for the file the app writes, logs it, and prunes to the caps', async () => {
    const d = scratch();
    put(d, 'a.heapsnapshot', 1000, 300);
    put(d, 'b.heapsnapshot', 1000, 200);
    put(d, 'c.heapsnapshot', 1000, 100);
    const { c, lines } = make({ dir: d }, { kill: () => { setTimeout(() => writeFileSync(join(d, 'Heap.x.heapsnapshot'), '{"snapshot":{}}'), 50); } });
    c.listener(risk('app', 'ok', 'warning', 210));
    await c.idle();
    expect(readdirSync(d).sort()).toEqual(['Heap.x.heapsnapshot', 'b.heapsnapshot', 'c.heapsnapshot']);
    expect(lines.find((l) => l['capture'] === 'file')).toMatchObject({ file: join(d, 'Heap.x.heapsnapshot'), bytes: 15 });
    expect(c.last('app')).toMatchObject({ results: { signal: 'ok' }, file: join(d, 'Heap.x.heapsnapshot'), bytes: 15, complete: true });
    expect(lines.find((l) => l['capture'] === 'prune')?.['msg']).toMatch(/removed 1 old file\(s\) .*\(a\.heapsnapshot\) to keep at most 2 file\(s\)/);
  });

  it('the app is OOM-killed while it writes: an empty dump is removed, a partial one flagged, and the log says to capture earlier', async () => {
    const d = scratch();
    // empty file, then the kill
    const one = make({ dir: d, timeoutMs: 1000 }, { kill: () => { writeFileSync(join(d, 'Heap.a.heapsnapshot'), ''); } });
    one.c.listener(risk('app', 'ok', 'warning', 250));
    one.c.listener({ type: 'oom_kill', container: 'app', count: 1, total: 1, peakUnreclaimable: 256 * MiB, limit: 256 * MiB });
    await one.c.idle();
    expect(readdirSync(d)).toEqual([]);
    expect(one.lines.find((l) => l['capture'] === 'file')?.['msg']).toMatch(/^capture: container app left Heap\.a\.heapsnapshot empty: it was OOM-killed while writing it; removed; a dump needs free memory of its own .*capture earlier: --capture-on warning/);
    // half a file, then the kill
    const two = make({ dir: d, timeoutMs: 1000 }, { kill: () => { writeFileSync(join(d, 'Heap.b.heapsnapshot'), '{"snapshot":'); } });
    two.c.listener(risk('app', 'ok', 'critical', 250));
    two.c.listener({ type: 'oom_kill', container: 'app', count: 1, total: 1, peakUnreclaimable: 256 * MiB, limit: 256 * MiB });
    await two.c.idle();
    expect(two.lines.find((l) => l['capture'] === 'file')).toMatchObject({ file: join(d, 'Heap.b.heapsnapshot'), complete: false });
    expect(two.c.last('app')).toMatchObject({ risk: 'critical', file: join(d, 'Heap.b.heapsnapshot'), bytes: 12, complete: false });
    expect(String(two.lines.find((l) => l['capture'] === 'file')?.['msg'])).toMatch(/was OOM-killed while or after writing Heap\.b\.heapsnapshot \(12 B\); it may be incomplete/);
    // nothing at all, then the kill
    const three = make({ dir: scratch(), timeoutMs: 1000 });
    three.c.listener(risk('app', 'ok', 'critical', 250));
    three.c.listener({ type: 'oom_kill', container: 'app', count: 1, total: 1, peakUnreclaimable: 256 * MiB, limit: 256 * MiB });
    await three.c.idle();
    expect(String(three.lines.find((l) => l['capture'] === 'file')?.['msg'])).toMatch(/was OOM-killed before it wrote anything into/);
  });

  it('nothing appears after the signal: a warning that says where the app should write', async () => {
    const d = scratch();
    const { c, lines } = make({ dir: d, timeoutMs: 1000 });
    c.listener(risk('app', 'ok', 'warning', 210));
    await c.idle();
    expect(lines.find((l) => l['capture'] === 'file')?.['msg']).toBe(`capture: no new file appeared in ${d} within 1s after SIGUSR2 to container app; does the app write there (e.g. node --diagnostic-dir=${d})?`);
  });
});
