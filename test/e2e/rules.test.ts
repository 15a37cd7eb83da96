// The shipped Prometheus rules (deploy/prometheus/headroom.rules.yaml): valid for promtool, its unit
// tests green (deploy/prometheus/tests/headroom.rules.test.yaml), the PrometheusRule generated from
// it and in sync, the alert names and labels other parts rely on, a runbook section per alert, and
// no headroom_* metric the agent does not export (the golden /metrics files are the contract).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
// @ts-expect-error plain ESM script without type declarations
import { buildPrometheusRule, PROMETHEUS_RULE_FILE, RULES_FILE } from '../../scripts/build-rules.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const RULES_TEST_FILE = 'deploy/prometheus/tests/headroom.rules.test.yaml';
const RUNBOOK = 'docs/runbook.md';
const read = (rel: string): string => readFileSync(`${ROOT}${rel}`, 'utf8');

// Alert names are a contract: other tests, the dashboard, the README and users' Alertmanager routes
// use them. Changing one here is a breaking change.
const ALERTS: Record<string, { severity: string; for: string }> = {
  HeadroomOOMRiskWarning: { severity: 'warning', for: '1m' },
  HeadroomOOMRiskCritical: { severity: 'critical', for: '0m' },
  HeadroomOOMKilled: { severity: 'warning', for: '0m' },
  HeadroomWorkingSetNearLimit: { severity: 'info', for: '15m' },
  HeadroomMemoryPressure: { severity: 'warning', for: '10m' },
  HeadroomTargetUnreadable: { severity: 'warning', for: '5m' },
  HeadroomReadErrors: { severity: 'info', for: '15m' },
};
const RECORDS = [
  'headroom:memory_unreclaimable:ratio_limit',
  'headroom:memory_working_set:ratio_limit',
  'headroom:memory_pressure_full:rate5m',
  'headroom:memory_pressure_some:rate5m',
];

interface Rule { record?: string; alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RulesFile { groups: Array<{ name: string; rules: Rule[] }> }
interface UnitTests {
  tests: Array<{
    name: string;
    alert_rule_test?: Array<{ alertname: string; eval_time: string; exp_alerts?: unknown[] }>;
    promql_expr_test?: Array<{ expr: string }>;
  }>;
}

const rulesText = read(RULES_FILE);
const rules = parse(rulesText) as RulesFile;
const allRules = rules.groups.flatMap((g) => g.rules);
const alerts = allRules.filter((r) => r.alert !== undefined);

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  if (r.error) {
    throw new Error(`promtool is needed to test the alert rules (Debian package "prometheus", .ci/run installs it): ${r.error.message}`);
  }
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('alert and recording rules', () => {
  it(`promtool check rules ${RULES_FILE}`, () => {
    const r = promtool(['check', 'rules', RULES_FILE]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it(`promtool test rules ${RULES_TEST_FILE}`, () => {
    const r = promtool(['test', 'rules', RULES_TEST_FILE]);
    expect(r.status, `promtool unit tests failed:\n${r.out}`).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it(`${PROMETHEUS_RULE_FILE} is generated from ${RULES_FILE}`, () => {
    const committed = read(PROMETHEUS_RULE_FILE);
    expect(committed, `${PROMETHEUS_RULE_FILE} is out of date: run node scripts/build-rules.mjs`).toBe(buildPrometheusRule(rulesText));
    // The copy is textual: check it also means the same rules, and is a valid PrometheusRule.
    const obj = parse(committed) as { apiVersion: string; kind: string; metadata: { name: string; labels: Record<string, string> }; spec: RulesFile };
    expect(obj.spec.groups).toEqual(rules.groups);
    expect(obj).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: { name: 'headroom', labels: { release: 'kube-prometheus-stack' } },
    });
    expect(() => new PrometheusRule(obj as never).validate()).not.toThrow();
  });

  it('has exactly the alerts other parts rely on, with severity, for, summary, description and a runbook anchor', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(Object.keys(ALERTS).sort());
    const runbook = read(RUNBOOK);
    const headings = new Set([...runbook.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1]!.toLowerCase()));
    for (const a of alerts) {
      const want = ALERTS[a.alert!]!;
      expect(a.labels?.['severity'], `${a.alert} severity`).toBe(want.severity);
      expect(a.for ?? '0m', `${a.alert} for`).toBe(want.for);
      expect(a.annotations?.['summary'], `${a.alert} summary`).toBeTruthy();
      expect(a.annotations?.['description'], `${a.alert} description`).toBeTruthy();
      const anchor = a.alert!.toLowerCase();
      expect(a.annotations?.['runbook_url'], `${a.alert} runbook_url`).toBe(`${RUNBOOK}#${anchor}`);
      expect(headings.has(anchor), `${RUNBOOK} has no "## ${a.alert}" section (anchor #${anchor})`).toBe(true);
      // namespace/pod come from the scrape target; headroom never sets them as labels
      expect(Object.keys(a.labels ?? {}).filter((k) => k === 'namespace' || k === 'pod'), a.alert).toEqual([]);
    }
  });

  it('has the recording rules the alerts and the dashboard use', () => {
    expect(allRules.filter((r) => r.record !== undefined).map((r) => r.record)).toEqual(RECORDS);
  });

  it('every alert has a promtool case where it fires and one where it does not; every recording rule a value test', () => {
    const unit = parse(read(RULES_TEST_FILE)) as UnitTests;
    const cases = unit.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const name of Object.keys(ALERTS)) {
      const mine = cases.filter((c) => c.alertname === name);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `no promtool case where ${name} fires`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `no promtool case where ${name} does not fire`).toBe(true);
    }
    const exprs = unit.tests.flatMap((t) => t.promql_expr_test ?? []).map((t) => t.expr);
    for (const r of RECORDS) expect(exprs.some((e) => e.includes(r)), `no promql_expr_test of ${r}`).toBe(true);
  });

  it('uses only headroom_* metrics the agent exports (golden pod-v2.prom / pod-v1.prom)', () => {
    const exported = new Set<string>();
    for (const f of ['pod-v2.prom', 'pod-v1.prom']) {
      for (const line of read(`test/e2e/golden/${f}`).split('\n')) {
        const m = /^(?:# TYPE )?(headroom_[a-z_]+)/.exec(line);
        if (m) exported.add(m[1]!);
      }
    }
    // Expressions and annotation templates (their `query` calls); recording rules are headroom:...
    const texts = allRules.flatMap((r) => [r.expr, ...Object.values(r.annotations ?? {})]);
    const used = new Set(texts.flatMap((t) => t.match(/\bheadroom_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(5);
    const missing = [...used].filter((n) => !exported.has(n));
    expect(missing, `metrics used in ${RULES_FILE} but not in the golden /metrics files: ${missing.join(', ')}`).toEqual([]);
  });
});
