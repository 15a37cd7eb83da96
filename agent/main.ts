#!/usr/bin/env node
// Entry: CLI/env -> config -> discovery -> sampler -> metrics/server; exit codes and signals.
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Capturer } from './capture/capturer.js';
import { createRunCgroup, exitStatus, RELAYED_SIGNALS, RunError, spawnInCgroup } from './cli/run.js';
import { ConfigError, parseCli, usage, type Config } from './config.js';
import { discoverPod, targetForCgroup, targetForPid, type DiscoveryResult, type Target } from './discovery.js';
import { createLogger, humanBytes, type Logger } from './log.js';
import { createRegistry } from './metrics.js';
import { Sampler } from './sampler.js';
import { createApp, listen } from './server.js';
import { logSink } from './sinks/log.js';
import { createSinks } from './sinks/create.js';
import { Dispatcher } from './sinks/dispatch.js';
import { detectLayout, type CgroupLayout } from './sources/cgroup.js';
import { VERSION } from './version.js';

function discoveryFor(cfg: Config, layout: CgroupLayout): () => Promise<DiscoveryResult> {
  const env = { procRoot: cfg.procRoot, layout, found: new Map() };
  switch (cfg.mode) {
    case 'pid':
      return async () => {
        const pid = cfg.pid!;
        const r = await targetForPid(env, pid, cfg.container ?? `pid-${pid}`);
        const notes = r.target ? [] : [`pid ${pid} is not running (or its /proc/${pid}/cgroup cannot be read); waiting for it`];
        return { targets: r.target ? [r.target] : [], errors: r.errors.map((error) => ({ container: cfg.container, error })), notes };
      };
    case 'cgroup':
      return async () => ({ targets: [await targetForCgroup(env, cfg.cgroup!, cfg.container)], errors: [], notes: [] });
    default:
      return () => discoverPod(env, { container: cfg.container, containerMap: cfg.containerMap });
  }
}

async function serve(cfg: Config, sampler: Sampler, layout: CgroupLayout, log: Logger, dispatcher?: Dispatcher, capturer?: Capturer): Promise<Server> {
  const source = {
    status: () => sampler.status(),
    readErrors: () => sampler.readErrors(),
    ...(dispatcher && dispatcher.size > 0 ? { notifications: () => dispatcher.stats() } : {}),
    ...(capturer ? { captures: () => capturer.stats() } : {}),
  };
  const registry = createRegistry(source, { version: VERSION, cgroupMode: layout.mode, defaultMetrics: process.env['HEADROOM_DEFAULT_METRICS'] !== 'false' });
  const app = createApp({
    registry, status: () => sampler.status(), ready: () => sampler.ready, version: VERSION,
    ...(capturer ? { lastCapture: (c: string) => capturer.last(c) } : {}),
  });
  const server = await listen(app, cfg.listen.host, cfg.listen.port);
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.listen.port;
  const host = cfg.listen.host ?? 'localhost';
  log.info(`serving metrics on http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`, { port });
  return server;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** --capture-signal / --capture-url: pre-OOM evidence, fed by the sampler's risk changes. */
function newCapturer(cfg: Config, sampler: Sampler, log: Logger): Capturer | undefined {
  if (!cfg.capture) return undefined;
  const capturer = new Capturer({
    config: cfg.capture, log, procRoot: cfg.procRoot,
    lookup: (name) => sampler.target(name),
  });
  sampler.on(capturer.listener);
  const c = cfg.capture;
  if (c.dir) {
    // Made now, not at the first capture: an app told to write there (node --diagnostic-dir) fails
    // to write its dump, and Node exits, when the directory does not exist.
    try {
      mkdirSync(c.dir, { recursive: true });
    } catch (err) {
      log.warn(`pre-OOM capture: cannot create ${c.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const how = [c.signal ? `send ${c.signal}` : '', c.url ? 'GET the capture URL' : ''].filter(Boolean).join(' and ');
  log.info(`pre-OOM capture: at risk ${c.on}, once per episode, ${how}${c.dir ? `; ${c.dir} kept within ${c.maxFiles} file(s) and ${humanBytes(c.maxBytes)}` : ''}`);
  return capturer;
}

function newSampler(cfg: Config, discover: () => Promise<DiscoveryResult>, log: Logger, dispatcher?: Dispatcher): Sampler {
  const sampler = new Sampler({
    procRoot: cfg.procRoot,
    intervalMs: cfg.intervalMs,
    peakWindowMs: cfg.peakWindowMs,
    processIntervalMs: cfg.processIntervalMs,
    topProcesses: cfg.topProcesses,
    discoveryIntervalMs: cfg.discoveryIntervalMs,
    risk: cfg.risk,
    memoryRequest: { container: cfg.container ?? cfg.containerMap.values().next().value, bytes: cfg.memoryRequest },
    declaredLimit: cfg.memoryLimitDeclared,
    discover,
  });
  sampler.on(logSink(log));
  if (dispatcher && dispatcher.size > 0) sampler.on(dispatcher.listener);
  return sampler;
}

async function watchMode(cfg: Config, layout: CgroupLayout, log: Logger): Promise<number> {
  if (layout.mode === 'none') {
    log.warn(`no cgroup memory controller found under ${cfg.cgroupRoot}; only per-process numbers will be exported`);
  }
  const dispatcher = new Dispatcher(await createSinks(cfg, log), { log });
  const sampler = newSampler(cfg, discoveryFor(cfg, layout), log, dispatcher);
  const capturer = newCapturer(cfg, sampler, log);
  const server = await serve(cfg, sampler, layout, log, dispatcher, capturer);
  dispatcher.start();
  sampler.start();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve(s));
  });
  log.info(`${signal}: shutting down`);
  await sampler.stop();
  await Promise.all([dispatcher.close(), capturer?.close()]);
  await close(server);
  return 0;
}

async function runMode(cfg: Config, layout: CgroupLayout, log: Logger): Promise<number> {
  const name = cfg.container && cfg.container !== 'run' ? cfg.container : basename(cfg.command[0]!);
  const cg = await createRunCgroup(cfg.procRoot, layout, `headroom-run-${process.pid}`, cfg.memoryLimit, log);
  let server: Server | undefined;
  let sampler: Sampler | undefined;
  let capturer: Capturer | undefined;
  const dispatcher = new Dispatcher(await createSinks(cfg, log), { log });
  try {
    const target: Target = {
      name, id: `run:${cg.dir}`, dir: cg.dir, version: cg.version, limitRoot: undefined,
      pressureDir: cg.pressureDir, pids: [], problem: undefined,
    };
    sampler = newSampler({ ...cfg, container: name }, async () => ({ targets: [target], errors: [], notes: [] }), log, dispatcher);
    capturer = newCapturer(cfg, sampler, log);
    server = await serve(cfg, sampler, layout, log, dispatcher, capturer);
    dispatcher.start();
    await sampler.sampleNow();
    const child = spawnInCgroup(cfg.command, cg.procsFiles);
    let stopRequested = false; // SIGTERM/SIGINT while the command runs: pass it on, then no --linger
    const relays = RELAYED_SIGNALS.map((s) => {
      const h = () => {
        if (s === 'SIGTERM' || s === 'SIGINT') stopRequested = true;
        child.kill(s);
      };
      process.on(s, h);
      return () => process.off(s, h);
    });
    sampler.start();
    log.info(`started ${JSON.stringify(basename(cfg.command[0]!))} as pid ${child.pid} in ${cg.dir}` +
      (cfg.memoryLimit !== undefined ? ` with a ${humanBytes(cfg.memoryLimit)} limit` : ' with no limit'), { container: name, pid: child.pid });
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (c, s) => resolve({ code: c, signal: s }));
      child.once('error', (err) => { log.error(`cannot start the command: ${err.message}`); resolve({ code: 127, signal: null }); });
    });
    for (const off of relays) off();
    await sampler.sampleNow(); // the final counters (an OOM kill) before the cgroup goes away
    const status = exitStatus(code, signal);
    log.info(`command exited with ${signal ? `signal ${signal}` : `status ${code}`}`, { container: name, exit_status: status });
    if (cfg.lingerMs > 0 && !stopRequested) {
      log.info(`still serving metrics for ${cfg.lingerMs / 1000}s (--linger)`);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      await sleep(cfg.lingerMs, undefined, { signal: stop.signal }).catch(() => { /* a signal ended the linger */ });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    return status;
  } finally {
    await sampler?.stop();
    // delivers what is queued (a final OOM kill) for up to 3 s; a capture in flight gets as long
    await Promise.all([dispatcher.close(), capturer?.close()]);
    if (server) await close(server);
    await cg.cleanup();
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCli(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`headroom: ${err.message}\nRun "headroom --help" for the flags.\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.kind === 'help') { process.stdout.write(usage() + '\n'); return 0; }
  if (parsed.kind === 'version') { process.stdout.write(`headroom ${VERSION}\n`); return 0; }
  const cfg = parsed.config;
  const format = cfg.logFormat === 'auto' ? (process.stderr.isTTY ? 'text' : 'json') : cfg.logFormat;
  const log = createLogger({ format, level: cfg.logLevel });
  const layout = await detectLayout(cfg.cgroupRoot);
  const pod = cfg.pod.name ? `, pod ${cfg.pod.namespace ?? '?'}/${cfg.pod.name}` : '';
  log.info(`headroom ${VERSION}: cgroup ${layout.mode}${layout.memoryRoot ? ` (memory controller at ${layout.memoryRoot})` : ''}, mode ${cfg.mode}${pod}`);
  try {
    return cfg.mode === 'run' ? await runMode(cfg, layout, log) : await watchMode(cfg, layout, log);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof RunError) log.error(err.message);
    else if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') log.error(`cannot listen on ${cfg.listen.host ?? ''}:${cfg.listen.port}: ${e.code}; choose another --listen`);
    else log.error(`fatal: ${e?.stack ?? String(err)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`headroom: ${(err as Error)?.stack ?? String(err)}\n`); process.exitCode = 1; },
);
