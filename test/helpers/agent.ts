// Start the built agent (dist/agent/main.js) as a real process and talk to it over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseMetrics, type Series } from './metrics.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = `${REPO}dist/agent/main.js`;

export interface LogLine {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [k: string]: unknown;
}

export interface Agent {
  readonly proc: ChildProcess;
  readonly port: number;
  /** every JSON log line so far, in order */
  readonly logs: LogLine[];
  /** stdout of the agent (and of a `run` command) */
  readonly stdout: string[];
  metrics(): Promise<Series[]>;
  metricsText(): Promise<string>;
  snapshot(): Promise<any>;
  /** resolves with the exit code (or 128+signal) */
  readonly exited: Promise<number>;
  stop(): Promise<number>;
}

export interface StartOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** wait for the "serving metrics" line (default true) */
  readonly waitForPort?: boolean;
  readonly timeoutMs?: number;
  /**
   * Start the agent through this command prefix (e.g. a shell that joins a cgroup and enters
   * namespaces, then `exec "$@"`): spawn(wrap[0], [...wrap.slice(1), node, main.js, ...args]).
   * `proc` is then the wrapper's process.
   */
  readonly wrap?: readonly string[];
  /** the agent's entry script (default: this repo's dist/agent/main.js) */
  readonly main?: string;
  /** node flags before the script, e.g. the image's CMD flags */
  readonly nodeArgs?: readonly string[];
  readonly cwd?: string;
}

/** Poll until fn returns a truthy value; rejects with `what` after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startAgent(args: readonly string[], opts: StartOptions = {}): Promise<Agent> {
  const argv = [...(opts.nodeArgs ?? []), opts.main ?? MAIN, '--listen', '127.0.0.1:0', '--log-format', 'json', ...args];
  const [file, ...pre] = opts.wrap && opts.wrap.length > 0 ? [...opts.wrap, process.execPath] : [process.execPath];
  const proc = spawn(file!, [...pre, ...argv], {
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  let port = 0;
  let buf = '';
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const j = JSON.parse(line) as LogLine;
        logs.push(j);
        if (typeof j['port'] === 'number' && j.msg.startsWith('serving metrics')) port = j['port'] as number;
      } catch {
        logs.push({ time: '', level: 'raw', msg: line });
      }
    }
  });
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => stdout.push(c));
  const exited = new Promise<number>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1)));
  });
  let done = false;
  void exited.then(() => { done = true; });
  if (opts.waitForPort !== false) {
    await waitFor('the agent to listen', () => {
      if (done) throw new Error(`agent exited early: ${logs.map((l) => l.msg).join(' | ')}`);
      return port;
    }, opts.timeoutMs ?? 30_000, 50);
  }
  const base = () => `http://127.0.0.1:${port}`;
  const metricsText = async () => {
    const r = await fetch(`${base()}/metrics`);
    if (!r.ok) throw new Error(`/metrics returned ${r.status}`);
    return r.text();
  };
  return {
    proc, get port() { return port; }, logs, stdout, exited,
    metricsText,
    metrics: async () => parseMetrics(await metricsText()),
    snapshot: async () => (await fetch(`${base()}/api/v1/snapshot`)).json(),
    stop: async () => {
      if (!done) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
