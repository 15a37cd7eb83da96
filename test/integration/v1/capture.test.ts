// Real cgroup v1: pre-OOM evidence. A real Node app started with --heapsnapshot-signal leaks in a
// limited cgroup (`headroom run`) until the kernel kills it. headroom sends SIGUSR2 once, at the
// warning, and the app's heap snapshot is complete on disk before the kill; the capture directory
// stays within its caps (the oldest old file is dropped). An app that does not catch the signal is
// not sent it (it would have died of SIGUSR2 instead of being warned about).
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor, type LogLine } from '../../helpers/agent.js';
import { hasV1Memory } from '../../helpers/cgroup.js';
import { value } from '../../helpers/metrics.js';
import { firstLog, isKillLine, isRiskLine, logMs, MiB, RAMP, recordResult, v1Session } from '../../helpers/v1.js';

// Scaled-down prediction (the ramp takes seconds, not minutes); risk never clears within a run.
const FAST_RISK = ['--interval', '200ms', '--risk-clear-samples', '1000', '--eta-window', '10s', '--eta-warning', '30s', '--eta-critical', '8s'];
const isCaptureLine = (what: string) => (l: LogLine) => l['capture'] === what;

describe.skipIf(!hasV1Memory())('cgroup v1: pre-OOM capture (needs root and a v1 memory controller)', () => {
  const session = v1Session();

  it('a leaking Node app gets SIGUSR2 once, writes a complete heap snapshot before the OOM kill, and the directory cap holds', async () => {
    const scratch = session.scratch();
    const dir = join(scratch, 'captures');
    mkdirSync(dir);
    // Three captures from earlier episodes, oldest first, 1 MiB each.
    const hour = 3600;
    const nowS = Date.now() / 1000;
    for (const [i, name] of ['old-1.heapsnapshot', 'old-2.heapsnapshot', 'old-3.heapsnapshot'].entries()) {
      writeFileSync(join(dir, name), Buffer.alloc(MiB, 1));
      utimesSync(join(dir, name), nowS - (3 - i) * hour, nowS - (3 - i) * hour);
    }

    const limit = 160 * MiB;
    const a = await session.start(['run', '--memory', '160M', ...FAST_RISK, '--linger', '60s',
      '--capture-signal', 'SIGUSR2', '--capture-on', 'warning', '--capture-dir', dir, '--capture-max-files', '3', '--capture-max-bytes', '64M',
      '--', process.execPath, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`, RAMP, '--step-mib', '1', '--every-ms', '250', '--quiet']);
    const exited = await waitFor('the command to exit', () => a.logs.find((l) => typeof l['exit_status'] === 'number'), 150_000);
    expect(exited['exit_status'], 'killed by the kernel (137), not by the signal (140)').toBe(137);
    const killIdx = await waitFor('the OOM kill line', () => { const i = firstLog(a.logs, isKillLine); return i >= 0 ? i + 1 : 0; }, 30_000) - 1;

    const warnIdx = firstLog(a.logs, isRiskLine('warning'));
    const critIdx = firstLog(a.logs, isRiskLine('critical'));
    const sentIdx = firstLog(a.logs, isCaptureLine('signal'));
    const fileIdx = firstLog(a.logs, isCaptureLine('file'));
    expect(warnIdx, 'a risk=warning line').toBeGreaterThanOrEqual(0);
    expect(sentIdx, 'the signal went out after the warning').toBeGreaterThan(warnIdx);
    expect(killIdx, 'and before the kill').toBeGreaterThan(sentIdx);
    expect(a.logs[sentIdx]!.msg).toMatch(/^capture: sent SIGUSR2 to pid \d+ \(node\) in container node$/);
    // Once per episode: warning, then critical, one signal.
    expect(critIdx).toBeGreaterThan(warnIdx);
    expect(a.logs.filter(isCaptureLine('signal'))).toHaveLength(1);
    expect(a.logs.filter(isCaptureLine('start'))).toHaveLength(1);

    // The snapshot: exactly one new file, complete (a writer killed mid-way leaves broken JSON), last
    // written before the kill was logged.
    const files = readdirSync(dir).sort();
    const snaps = files.filter((f) => f.startsWith('Heap.') && f.endsWith('.heapsnapshot'));
    expect(snaps, `files in ${dir}: ${files.join(', ')}`).toHaveLength(1);
    const snapPath = join(dir, snaps[0]!);
    const snap = JSON.parse(readFileSync(snapPath, 'utf8'));
    expect(snap.snapshot.meta.node_fields).toContain('self_size');
    expect(snap.snapshot.node_count).toBeGreaterThan(1000);
    // The leak is in it: ramp.mjs keeps its Buffers in an array named `chunks`.
    expect(snap.strings).toContain('chunks');
    const mtime = statSync(snapPath).mtimeMs;
    expect(mtime).toBeLessThanOrEqual(logMs(a.logs[killIdx]!));
    expect(fileIdx, 'headroom saw the file').toBeGreaterThan(sentIdx);
    expect(a.logs[fileIdx]!['file']).toBe(snapPath);

    // The cap: 3 files, the oldest dropped to make room, within 64 MiB.
    expect(files).toEqual([snaps[0], 'old-2.heapsnapshot', 'old-3.heapsnapshot']);
    const total = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(64 * MiB);

    const m = await a.metrics();
    expect(value(m, 'headroom_captures_total', { container: 'node', method: 'signal', result: 'ok' })).toBe(1);
    expect(value(m, 'headroom_captures_total', { container: 'node', method: 'signal', result: 'skipped' })).toBeUndefined();
    const snapshot = (await a.snapshot()).containers.find((c: any) => c.container === 'node');
    expect(snapshot.capture).toMatchObject({ risk: 'warning', results: { signal: 'ok' }, file: snapPath, bytes: statSync(snapPath).size, complete: true });

    const warn = a.logs[warnIdx]!;
    recordResult('capture-heapsnapshot', {
      limit,
      warningRatio: (warn['unreclaimable_bytes'] as number) / limit,
      warningEtaS: warn['eta_seconds'],
      signalBeforeKillMs: logMs(a.logs[killIdx]!) - logMs(a.logs[sentIdx]!),
      snapshotWrittenBeforeKillMs: logMs(a.logs[killIdx]!) - mtime,
      snapshotBytes: statSync(snapPath).size,
      filesAfter: files,
      totalBytesAfter: total,
    });
  }, 240_000);

  it('does not send SIGUSR2 to an app that does not catch it: the kernel kills it, not headroom', async () => {
    const a = await session.start(['run', '--memory', '128M', ...FAST_RISK, '--linger', '60s',
      '--capture-signal', 'USR2', '--capture-on', 'warning',
      '--', process.execPath, RAMP, '--step-mib', '1', '--every-ms', '250', '--quiet']);
    const exited = await waitFor('the command to exit', () => a.logs.find((l) => typeof l['exit_status'] === 'number'), 150_000);
    expect(exited['exit_status']).toBe(137);
    const skip = a.logs.find(isCaptureLine('signal'));
    expect(skip?.msg).toMatch(/^capture: SIGUSR2 not sent to container node: none of its processes catches it \(\d+ \(node\)\), and an uncaught SIGUSR2 would kill the app$/);
    expect(firstLog(a.logs, isRiskLine('warning')), 'a risk=warning line').toBeGreaterThanOrEqual(0);
    expect(firstLog(a.logs, isCaptureLine('signal'))).toBeGreaterThan(firstLog(a.logs, isRiskLine('warning')));
    const m = await a.metrics();
    expect(value(m, 'headroom_captures_total', { container: 'node', method: 'signal', result: 'skipped' })).toBe(1);
    expect(value(m, 'headroom_captures_total', { container: 'node', method: 'signal', result: 'ok' })).toBeUndefined();
  }, 240_000);

  it('a heap snapshot asked for too close to the limit: the app is killed while writing it, and headroom says so', async () => {
    // Warning only from the 90 % line (no prediction), 128 MiB: ~13 MiB left, and a V8 heap
    // snapshot of even a 3 MB heap needs ~30 MiB more (README, Pre-OOM evidence).
    const scratch = session.scratch();
    const dir = join(scratch, 'captures'); // made by headroom at start: node fails to write into a missing one
    const a = await session.start(['run', '--memory', '128M', '--interval', '200ms', '--risk-clear-samples', '1000', '--eta-warning', '1s', '--eta-critical', '1s', '--linger', '60s',
      '--warning-ratio', '0.9', '--critical-ratio', '0.95',
      '--capture-signal', 'SIGUSR2', '--capture-on', 'warning', '--capture-dir', dir,
      '--', process.execPath, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`, RAMP, '--step-mib', '1', '--every-ms', '250', '--quiet']);
    const exited = await waitFor('the command to exit', () => a.logs.find((l) => typeof l['exit_status'] === 'number'), 150_000);
    expect(exited['exit_status']).toBe(137);
    const file = await waitFor('the capture file verdict', () => a.logs.find(isCaptureLine('file')), 30_000);
    expect(firstLog(a.logs, isRiskLine('warning')), 'a risk=warning line').toBeGreaterThanOrEqual(0);
    expect(firstLog(a.logs, isCaptureLine('signal'))).toBeGreaterThan(firstLog(a.logs, isRiskLine('warning')));
    expect(file.level).toBe('warn');
    expect(file.msg).toMatch(/OOM-killed (before it wrote anything|while writing it|while or after writing)/);
    expect(file.msg).toMatch(/capture earlier: --capture-on warning/);
    // no empty dump left behind
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size, f).toBeGreaterThan(0);
    recordResult('capture-too-late', { verdict: file.msg, left: readdirSync(dir) });
  }, 240_000);
});
