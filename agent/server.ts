// HTTP: /metrics for Prometheus, /healthz and /readyz for the kubelet, /api/v1/snapshot for people
// and scripts, / as a tiny index. Handlers only serialise what the sampler already holds.
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { CaptureRecord } from './capture/capturer.js';
import type { TargetStatus } from './sampler.js';

export interface ServerDeps {
  readonly registry: Registry;
  readonly status: () => TargetStatus[];
  readonly ready: () => boolean;
  readonly version: string;
  /** pre-OOM captures, when configured: the last one per container */
  readonly lastCapture?: (container: string) => CaptureRecord | undefined;
}

function captureJson(r: CaptureRecord | undefined): unknown {
  if (!r) return null;
  return { at: new Date(r.at).toISOString(), risk: r.risk, results: r.results, file: r.file ?? null, bytes: r.bytes ?? null, complete: r.complete ?? null };
}

export function snapshotJson(status: TargetStatus[], lastCapture?: (container: string) => CaptureRecord | undefined): unknown {
  return status.map((s) => {
    const v = s.latest?.view;
    return {
      container: s.name,
      present: s.present,
      cgroup: s.target.dir ?? null,
      cgroupVersion: s.target.version ?? null,
      problem: s.target.problem ?? null,
      sampledAt: s.latest ? new Date(s.latest.t).toISOString() : null,
      memory: v ? {
        usage: v.usage, workingSet: v.workingSet, unreclaimable: v.unreclaimable, reclaimable: v.reclaimable,
        pageCache: v.pageCache ?? null, limit: v.limit ?? null, high: s.latest?.raw.high ?? null, peak: s.latest?.raw.peak ?? null,
        workingSetMax: s.workingSetMax ?? null, unreclaimableMax: s.unreclaimableMax ?? null,
        breakdown: Object.fromEntries(v.breakdown),
      } : null,
      risk: s.risk,
      eta: s.eta ?? null,
      growthBytesPerSecond: s.growth ?? null,
      oomKills: s.oomKills ?? null,
      events: Object.fromEntries(s.events),
      pressureSeconds: Object.fromEntries(s.pressureSeconds),
      restarts: s.restarts,
      processes: s.processes.map((p) => ({ comm: p.comm, count: p.count, ...Object.fromEntries(p.bytes) })),
      ...(lastCapture ? { capture: captureJson(lastCapture(s.name)) } : {}),
    };
  });
}

export function createApp(deps: ServerDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    try {
      const body = await deps.registry.metrics();
      res.set('Content-Type', deps.registry.contentType).send(body);
    } catch (err) {
      res.status(500).type('text/plain').send(`error collecting metrics: ${(err as Error).message}\n`);
    }
  });
  app.get('/healthz', (_req, res) => { res.type('text/plain').send('ok\n'); });
  app.get('/readyz', (_req, res) => {
    if (deps.ready()) res.type('text/plain').send('ready\n');
    else res.status(503).type('text/plain').send('first sample not taken yet\n');
  });
  app.get('/api/v1/snapshot', (_req, res) => { res.json({ version: deps.version, containers: snapshotJson(deps.status(), deps.lastCapture) }); });
  app.get('/', (_req, res) => {
    res.type('text/html').send(
      `<!doctype html><title>headroom</title><h1>headroom ${deps.version}</h1>` +
      '<ul><li><a href="metrics">/metrics</a></li><li><a href="api/v1/snapshot">/api/v1/snapshot</a></li>' +
      '<li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul>',
    );
  });
  return app;
}

export function listen(app: express.Express, host: string | undefined, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once('error', reject);
    // No host: Node listens on :: and 0.0.0.0 where it can (dual stack), else 0.0.0.0.
    server.listen(host === undefined ? { port } : { port, host }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
