// The README's configuration and metrics tables are part of the contract: keep them complete.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FLAGS } from '../../agent/config.js';
import { createRegistry } from '../../agent/metrics.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents every flag with its environment variable and default', () => {
    for (const f of FLAGS.filter((x) => !x.boolean)) {
      const row = README.split('\n').find((l) => l.startsWith(`| \`--${f.name}\` |`));
      expect(row, `README row for --${f.name}`).toBeDefined();
      if (f.env) expect(row).toContain(f.env);
      if (f.def) expect(row).toContain(`\`${f.def}\``);
    }
  });

  it('documents every headroom_* metric the agent defines', async () => {
    const reg = createRegistry({ status: () => [], readErrors: () => [], notifications: () => [] }, { version: 't', cgroupMode: 'v2', defaultMetrics: false });
    const names = (await reg.getMetricsAsJSON()).map((m) => m.name);
    expect(names.length).toBeGreaterThanOrEqual(20);
    for (const n of names) expect(README, n).toContain(`\`${n}`);
  });

  it('names the test command that .ci/run runs', () => {
    expect(README).toContain('npm ci && npm test');
    expect(readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test$/m);
  });
});
