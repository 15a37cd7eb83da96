import { describe, expect, it } from 'vitest';
import { ConfigError, parseCli, parseDuration, parseListen, parseSize } from '../../agent/config.js';

const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = parseCli(argv, env);
  if (r.kind !== 'run') throw new Error('expected a config');
  return r.config;
};

describe('config', () => {
  it('defaults', () => {
    const c = cfg([]);
    expect(c).toMatchObject({ mode: 'pod', intervalMs: 1000, peakWindowMs: 60_000, procRoot: '/proc', cgroupRoot: '/sys/fs/cgroup', topProcesses: 10 });
    expect(c.listen).toEqual({ host: undefined, port: 9847 });
  });
  it('flags win over HEADROOM_* env', () => {
    expect(cfg(['--interval', '2s'], { HEADROOM_INTERVAL: '5s' }).intervalMs).toBe(2000);
    expect(cfg([], { HEADROOM_INTERVAL: '250ms', HEADROOM_TARGET_CONTAINER: 'app' })).toMatchObject({ intervalMs: 250, container: 'app' });
  });
  it('run takes the command after --', () => {
    const c = cfg(['run', '--memory', '256Mi', '--', 'node', '-e', 'x']);
    expect(c).toMatchObject({ mode: 'run', memoryLimit: 256 * 1024 * 1024, command: ['node', '-e', 'x'] });
  });
  it('time-to-OOM and pressure thresholds, from flags or env', () => {
    expect(cfg([]).risk).toMatchObject({ etaWindowMs: 60_000, etaWarningS: 300, etaCriticalS: 60, psiFullWarning: 0.1 });
    expect(cfg(['--eta-warning', '2m'], { HEADROOM_ETA_CRITICAL: '30s', HEADROOM_ETA_WINDOW: '2m', HEADROOM_PSI_FULL_WARNING: '0.2' }).risk)
      .toMatchObject({ etaWindowMs: 120_000, etaWarningS: 120, etaCriticalS: 30, psiFullWarning: 0.2 });
    expect(() => cfg(['--eta-critical', '10m'])).toThrow(/--eta-critical: must not be above --eta-warning/);
    expect(() => cfg(['--eta-window', '2s'])).toThrow(/--eta-window: must be at least 4 times --interval/);
    expect(() => cfg(['--psi-full-warning', '2'])).toThrow(/--psi-full-warning/);
  });
  it('maps container names to comms', () => {
    expect([...cfg(['--container', 'app=node,proxy=envoy']).containerMap]).toEqual([['node', 'app'], ['envoy', 'proxy']]);
  });
  it('the downward API writes 0 for an unset request: no request, not an error', () => {
    expect(cfg([], { HEADROOM_MEMORY_REQUEST: '0' }).memoryRequest).toBeUndefined();
    expect(cfg([], { HEADROOM_MEMORY_REQUEST: '134217728' }).memoryRequest).toBe(134217728);
  });
  it.each([
    ['256M', 256 * 2 ** 20], ['256Mi', 256 * 2 ** 20], ['256MB', 256e6], ['1G', 2 ** 30], ['1Gi', 2 ** 30], ['4096', 4096], ['1.5Gi', 1.5 * 2 ** 30],
  ])('size %s', (raw, want) => expect(parseSize('memory', raw)).toBe(want));
  it.each(['', 'abc', '12 parsecs', '-1M', '0'])('bad size %j', (raw) => expect(() => parseSize('memory', raw)).toThrow(ConfigError));
  it.each([['500ms', 500], ['1s', 1000], ['2', 2000], ['1.5m', 90_000]])('duration %s', (raw, want) => expect(parseDuration('interval', raw)).toBe(want));
  it.each([[':9847', undefined, 9847], ['127.0.0.1:0', '127.0.0.1', 0], ['[::1]:80', '::1', 80], ['9000', undefined, 9000]])('listen %s', (raw, host, port) => {
    expect(parseListen(raw)).toEqual({ host, port });
  });
  it.each([
    [['--critical-ratio', '0.5'], /must not be below --warning-ratio/],
    [['--peak-window', '100ms'], /must be at least --interval/],
    [['--interval', '10ms'], /at least 50ms/],
    [['--top-processes', '1000'], /between 0 and 100/],
    [['--pid', 'abc'], /invalid --pid/],
    [['--container', 'a=,b=c'], /NAME=COMM/],
  ])('%j is rejected', (argv, msg) => expect(() => cfg(argv)).toThrow(msg));
  it('the default --eta-window stretches to 4 samples for a long --interval; an explicit one too short is an error', () => {
    expect(cfg(['--interval', '30s']).risk.etaWindowMs).toBe(120_000);
    expect(() => cfg(['--interval', '30s', '--eta-window', '60s'])).toThrow(/at least 4 times --interval/);
  });
});

describe('--pressure-min-ratio', () => {
  const ratio = (v: string) => {
    const r = parseCli(['--pressure-min-ratio', v], {});
    if (r.kind !== 'run') throw new Error('expected a config');
    return r.config.risk.pressureMinRatio;
  };
  it('takes 0 however it is written, and ratios up to 1; the default is 0.7', () => {
    expect(ratio('0')).toBe(0);
    expect(ratio('0.0')).toBe(0);
    expect(ratio('0.5')).toBe(0.5);
    expect(cfg([]).risk.pressureMinRatio).toBe(0.7);
    expect(() => ratio('1.5')).toThrow(/invalid --pressure-min-ratio "1.5": expected a ratio between 0 and 1/);
    expect(() => cfg(['--warning-ratio', '0'])).toThrow(/invalid --warning-ratio "0"/);
  });
});
