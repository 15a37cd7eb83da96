// The CLI contract: bad flags exit 2 naming the flag; --help and --version exit 0.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MAIN } from '../helpers/agent.js';

const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('headroom CLI', () => {
  it.each([
    [['--interval', 'soon'], /invalid --interval "soon"/],
    [['--listen', 'nope'], /invalid --listen "nope"/],
    [['--warning-ratio', '1.5'], /invalid --warning-ratio "1.5"/],
    [['--pid', '1', '--cgroup', '/x'], /--pid and --cgroup are exclusive/],
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['run', '--memory', '12 parsecs', '--', 'true'], /invalid --memory "12 parsecs"/],
    [['run'], /run needs a command/],
    [['--memory', '64M'], /--memory only applies to run/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--log-format', 'xml'], /invalid --log-format "xml"/],
  ])('%j exits 2 with a message naming the problem', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^headroom: /);
  });

  it('reads flags from HEADROOM_* environment variables, and rejects bad ones the same way', () => {
    const r = spawnSync(process.execPath, [MAIN], { encoding: 'utf8', env: { ...process.env, HEADROOM_INTERVAL: 'often' }, timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid --interval "often"/);
  });

  it('--help lists every contract flag and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const f of ['run', '--cgroup', '--pid', '--listen', '--path.proc', '--path.cgroup', '--interval', '--peak-window']) {
      expect(r.stdout).toContain(f);
    }
  });

  it('--version prints the package version', () => {
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^headroom \d+\.\d+\.\d+\n$/);
  });
});
