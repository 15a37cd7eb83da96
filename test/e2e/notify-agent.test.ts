// The sinks wired into the built agent: on a fixture pod tree with a tiny --critical-ratio the first
// sample is critical, so the agent POSTs one risk notification to a local webhook and counts it in
// headroom_sink_notifications_total. --kubernetes-events outside a cluster: one warning, agent runs.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, waitFor, type Agent } from '../helpers/agent.js';
import { value } from '../helpers/metrics.js';

const FIX = new URL('../fixtures/trees/', import.meta.url).pathname;
let agent: Agent | undefined;
let srv: Server | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  srv?.closeAllConnections();
  await new Promise((r) => (srv ? srv.close(r) : r(undefined)));
  srv = undefined;
});

describe('notification sinks in the agent', () => {
  it('sends a risk change to --webhook-url and counts it', async () => {
    const got: any[] = [];
    srv = createServer((req, res) => {
      let d = '';
      req.on('data', (c) => { d += c; });
      req.on('end', () => { got.push({ path: req.url, body: JSON.parse(d) }); res.end(); });
    });
    await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', r));
    const port = (srv.address() as import('node:net').AddressInfo).port;
    agent = await startAgent([
      '--path.proc', `${FIX}pod-v2/proc`, '--path.cgroup', `${FIX}pod-v2/sys/fs/cgroup`, '--discovery-interval', '1h',
      '--container', 'app=node,db=postgres', '--warning-ratio', '0.01', '--critical-ratio', '0.02',
      '--webhook-url', `http://127.0.0.1:${port}/hook`, '--kubernetes-events',
    ], { env: { POD_NAME: 'shop-7d9f', POD_NAMESPACE: 'prod', KUBERNETES_SERVICE_HOST: '' } });
    await waitFor('the webhook call', () => got.length > 0, 20_000);
    expect(got[0]).toMatchObject({ path: '/hook', body: { schema: 'headroom.notification/v1', kind: 'risk', container: 'app', level: 'critical', previous: 'ok', pod: 'shop-7d9f', namespace: 'prod' } });
    expect(got[0].body.memory.limit_bytes).toBeGreaterThan(0);
    const m = await waitFor('the sent counter', async () => {
      const s = await agent!.metrics();
      return value(s, 'headroom_sink_notifications_total', { sink: 'webhook', result: 'sent' }) === 1 ? s : undefined;
    });
    expect(value(m, 'headroom_sink_notifications_total', { sink: 'webhook', result: 'failed' })).toBe(0);
    expect(agent.logs.find((l) => l.msg.startsWith('--kubernetes-events: disabled'))?.msg).toMatch(/KUBERNETES_SERVICE_HOST is not set/);
    expect(agent.logs.find((l) => l.msg.startsWith('notifications go to'))?.msg).toBe('notifications go to webhook');
  });
});
