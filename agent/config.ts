// Every flag and HEADROOM_* environment variable, validated in one place.
// Flags win over the environment; a bad value is one clear error naming the flag (exit 2).
import { resolve } from 'node:path';
import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import type { RiskConfig } from './analysis/risk.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Mode = 'pod' | 'pid' | 'cgroup' | 'run';

export interface Config {
  readonly mode: Mode;
  readonly listen: { readonly host: string | undefined; readonly port: number };
  readonly intervalMs: number;
  readonly peakWindowMs: number;
  readonly processIntervalMs: number;
  readonly topProcesses: number;
  readonly discoveryIntervalMs: number;
  readonly procRoot: string;
  readonly cgroupRoot: string;
  readonly pid: number | undefined;
  readonly cgroup: string | undefined;
  /** name of the watched container (HEADROOM_TARGET_CONTAINER) */
  readonly container: string | undefined;
  /** pod mode with several containers: main-process comm -> container name */
  readonly containerMap: ReadonlyMap<string, string>;
  readonly memoryRequest: number | undefined;
  /** the app's limits.memory from the downward API: checked against the cgroup's limit, never used instead of it */
  readonly memoryLimitDeclared: number | undefined;
  /** from the downward API (POD_NAME, POD_NAMESPACE): for log lines and Kubernetes Events */
  readonly pod: { readonly name: string | undefined; readonly namespace: string | undefined };
  readonly risk: RiskConfig;
  readonly logFormat: 'json' | 'text' | 'auto';
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** run mode */
  readonly memoryLimit: number | undefined;
  readonly lingerMs: number;
  readonly command: readonly string[];
  /** notification sinks (README "Notifications") */
  readonly sinks: {
    readonly alertmanagerUrl: string | undefined;
    readonly webhookUrl: string | undefined;
    readonly kubernetesEvents: boolean;
  };
  /** pre-OOM evidence capture (README "Pre-OOM evidence"); undefined when neither a signal nor a URL is set */
  readonly capture: CaptureConfig | undefined;
}

export interface CaptureConfig {
  /** the risk level that starts an episode's one capture */
  readonly on: 'warning' | 'critical';
  /** sent to the container's main process that catches it */
  readonly signal: NodeJS.Signals | undefined;
  /** GET, the body saved into dir */
  readonly url: string | undefined;
  /** where captures are saved (URL) or written by the app (signal); capped and pruned oldest first */
  readonly dir: string | undefined;
  readonly maxFiles: number;
  readonly maxBytes: number;
  /** the URL download, and the wait for the app's file after a signal */
  readonly timeoutMs: number;
}

export interface FlagSpec {
  readonly name: string;
  readonly env?: string;
  readonly def?: string;
  readonly help: string;
  readonly boolean?: boolean;
}

/** The table the README documents; keep them in step. */
export const FLAGS: readonly FlagSpec[] = [
  { name: 'listen', env: 'HEADROOM_LISTEN', def: ':9847', help: 'address to serve /metrics on, [host]:port' },
  { name: 'interval', env: 'HEADROOM_INTERVAL', def: '1s', help: 'how often cgroup files are sampled' },
  { name: 'peak-window', env: 'HEADROOM_PEAK_WINDOW', def: '60s', help: 'trailing window of the *_max_bytes gauges' },
  { name: 'process-interval', env: 'HEADROOM_PROCESS_INTERVAL', def: '10s', help: 'how often per-process /proc stats are read' },
  { name: 'top-processes', env: 'HEADROOM_TOP_PROCESSES', def: '10', help: 'process groups (by comm) exported per container, 0 = none' },
  { name: 'discovery-interval', env: 'HEADROOM_DISCOVERY_INTERVAL', def: '5s', help: 'how often /proc is scanned for new or restarted containers' },
  { name: 'path.proc', env: 'HEADROOM_PATH_PROC', def: '/proc', help: 'procfs mount point' },
  { name: 'path.cgroup', env: 'HEADROOM_PATH_CGROUP', def: '/sys/fs/cgroup', help: 'cgroup file system mount point' },
  { name: 'pid', env: 'HEADROOM_PID', help: 'watch the memory cgroup of this process' },
  { name: 'cgroup', env: 'HEADROOM_CGROUP', help: 'watch this cgroup directory (absolute, or relative to the memory hierarchy)' },
  { name: 'container', env: 'HEADROOM_TARGET_CONTAINER', help: 'container name for the `container` label; in a pod, name=comm,... maps several' },
  { name: 'memory-request', env: 'HEADROOM_MEMORY_REQUEST', help: "the app's requests.memory in bytes (downward API)" },
  { name: 'memory-limit', env: 'HEADROOM_MEMORY_LIMIT', help: "the app's limits.memory in bytes (downward API); a log line says when the cgroup's limit differs" },
  { name: 'warning-ratio', env: 'HEADROOM_WARNING_RATIO', def: '0.8', help: 'unreclaimable/limit at which risk is warning' },
  { name: 'critical-ratio', env: 'HEADROOM_CRITICAL_RATIO', def: '0.9', help: 'unreclaimable/limit at which risk is critical' },
  { name: 'risk-clear-samples', env: 'HEADROOM_RISK_CLEAR_SAMPLES', def: '5', help: 'samples a cause must stay clear before risk falls' },
  { name: 'eta-window', env: 'HEADROOM_ETA_WINDOW', def: '60s', help: 'trailing window of the growth trend (time-to-OOM), the PSI full rate and memory.high events' },
  { name: 'eta-warning', env: 'HEADROOM_ETA_WARNING', def: '300s', help: 'predicted time to OOM at which risk is warning' },
  { name: 'eta-critical', env: 'HEADROOM_ETA_CRITICAL', def: '60s', help: 'predicted time to OOM at which risk is critical' },
  { name: 'psi-full-warning', env: 'HEADROOM_PSI_FULL_WARNING', def: '0.1', help: 'PSI memory full stall rate over --eta-window (stalled s/s) at which risk is warning' },
  { name: 'pressure-min-ratio', env: 'HEADROOM_PRESSURE_MIN_RATIO', def: '0.7', help: 'PSI full and memory.high throttling raise risk only while unreclaimable/limit is at least this (0 = always)' },
  { name: 'log-format', env: 'HEADROOM_LOG_FORMAT', def: 'auto', help: 'json (one event per line), text, or auto: text on a terminal, else json' },
  { name: 'log-level', env: 'HEADROOM_LOG_LEVEL', def: 'info', help: 'debug, info, warn or error' },
  { name: 'memory', env: 'HEADROOM_RUN_MEMORY', help: 'run: memory limit of the cgroup made for the command (e.g. 256M)' },
  { name: 'linger', env: 'HEADROOM_RUN_LINGER', def: '0s', help: 'run: keep serving /metrics this long after the command exits' },
  { name: 'alertmanager-url', env: 'HEADROOM_ALERTMANAGER_URL', help: 'send risk changes and OOM kills as alerts to this Alertmanager (v2 API), e.g. http://alertmanager:9093' },
  { name: 'webhook-url', env: 'HEADROOM_WEBHOOK_URL', help: 'POST risk changes and OOM kills as JSON to this URL' },
  { name: 'kubernetes-events', env: 'HEADROOM_KUBERNETES_EVENTS', boolean: true, help: 'write risk changes and OOM kills as Kubernetes Events on the pod (the variable: true or false)' },
  { name: 'capture-signal', env: 'HEADROOM_CAPTURE_SIGNAL', help: 'pre-OOM evidence: send this signal (e.g. SIGUSR2 to a Node app started with --heapsnapshot-signal=SIGUSR2) to the container\'s main process that catches it' },
  { name: 'capture-url', env: 'HEADROOM_CAPTURE_URL', help: 'pre-OOM evidence: GET this URL (e.g. http://localhost:6060/debug/pprof/heap) and save the body into --capture-dir' },
  { name: 'capture-on', env: 'HEADROOM_CAPTURE_ON', def: 'warning', help: 'risk level that triggers the one capture per episode: warning or critical' },
  { name: 'capture-dir', env: 'HEADROOM_CAPTURE_DIR', help: 'directory for captures (needed by --capture-url; with --capture-signal, the app\'s dump directory): capped, oldest dropped' },
  { name: 'capture-max-files', env: 'HEADROOM_CAPTURE_MAX_FILES', def: '5', help: 'at most this many files are kept in --capture-dir' },
  { name: 'capture-max-bytes', env: 'HEADROOM_CAPTURE_MAX_BYTES', def: '512Mi', help: 'at most this many bytes are kept in --capture-dir' },
  { name: 'capture-timeout', env: 'HEADROOM_CAPTURE_TIMEOUT', def: '60s', help: 'limit for the --capture-url download, and for waiting on the app\'s file after --capture-signal' },
  { name: 'help', boolean: true, help: 'print this help' },
  { name: 'version', boolean: true, help: 'print the version' },
];

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected a duration like 500ms, 1s, 2m`);
  return Math.round(Number(m[1]) * UNITS_MS[m[2] ?? 's']!);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1000, kb: 1000, ki: 1024, kib: 1024,
  m: 1000 ** 2, mb: 1000 ** 2, mi: 1024 ** 2, mib: 1024 ** 2,
  g: 1000 ** 3, gb: 1000 ** 3, gi: 1024 ** 3, gib: 1024 ** 3,
};

/**
 * Sizes as Kubernetes writes them (256Mi, 1G, 134217728) and as people type them to tools
 * like docker (256m, 256M = MiB there). A single-letter K/M/G suffix is read as binary,
 * like docker and the kernel's memory.max do; "MB"/"GB" are decimal; "Mi"/"Gi" binary.
 */
export function parseSize(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(raw.trim());
  const unit = m?.[2]?.toLowerCase();
  if (!m || unit === undefined || !(unit in SIZE_UNITS)) {
    throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected bytes or a size like 256Mi, 256M, 1G`);
  }
  const mult = unit.length === 1 && unit !== 'b' ? 1024 ** ('kmg'.indexOf(unit) + 1) : SIZE_UNITS[unit]!;
  const v = Math.round(Number(m[1]) * mult);
  if (v <= 0) throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: must be more than 0`);
  return v;
}

function parseIntFlag(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected a whole number`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(`invalid --${flag} ${raw}: must be between ${min} and ${max}`);
  return v;
}

function parseRatio(flag: string, raw: string, allowZero = false): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < 0 || (v === 0 && !allowZero) || v > 1) {
    throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected a ratio between 0 and 1, like 0.8`);
  }
  return v;
}

/** SIGUSR2, USR2, usr2. SIGKILL and SIGSTOP cannot be caught: they would only kill or freeze the app. */
export function parseSignal(flag: string, raw: string): NodeJS.Signals {
  const name = raw.trim().toUpperCase();
  const sig = (name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals;
  if (!(sig in osConstants.signals)) throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected a signal name like SIGUSR2`);
  if (sig === 'SIGKILL' || sig === 'SIGSTOP') throw new ConfigError(`invalid --${flag} ${sig}: it cannot be caught, so the app could not dump anything; use e.g. SIGUSR2`);
  return sig;
}

function parseCapture(get: (name: string) => string | undefined): CaptureConfig | undefined {
  const sigRaw = get('capture-signal');
  const signal = sigRaw === undefined || sigRaw.trim() === '' ? undefined : parseSignal('capture-signal', sigRaw);
  const url = parseUrl('capture-url', get('capture-url'));
  const dirRaw = get('capture-dir');
  const dir = dirRaw === undefined || dirRaw.trim() === '' ? undefined : resolve(dirRaw.trim());
  const on = get('capture-on')!;
  if (on !== 'warning' && on !== 'critical') throw new ConfigError(`invalid --capture-on ${JSON.stringify(on)}: expected warning or critical`);
  const maxFiles = parseIntFlag('capture-max-files', get('capture-max-files')!, 1, 10_000);
  const maxBytes = parseSize('capture-max-bytes', get('capture-max-bytes')!);
  const timeoutMs = parseDuration('capture-timeout', get('capture-timeout')!);
  if (timeoutMs < 1000) throw new ConfigError(`invalid --capture-timeout ${get('capture-timeout')}: must be at least 1s`);
  if (signal === undefined && url === undefined) {
    if (dir !== undefined) throw new ConfigError('--capture-dir needs --capture-signal or --capture-url: it says where captures go, not when to take them');
    return undefined;
  }
  if (url !== undefined && dir === undefined) throw new ConfigError('--capture-url needs --capture-dir: the directory its responses are saved in');
  return { on, signal, url, dir, maxFiles, maxBytes, timeoutMs };
}

function parseUrl(flag: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let u: URL | undefined;
  try { u = new URL(raw.trim()); } catch { /* below */ }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    throw new ConfigError(`invalid --${flag} ${JSON.stringify(raw)}: expected an http:// or https:// URL`);
  }
  return u.href;
}

function parseBoolEnv(name: string, raw: string | undefined): boolean {
  const v = raw?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: expected true or false`);
}

export function parseListen(raw: string): Config['listen'] {
  const t = raw.trim();
  const m = /^\d+$/.test(t) ? ['', undefined, '', t] : /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(t);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`invalid --listen ${JSON.stringify(raw)}: expected [host]:port, like :9847 or 127.0.0.1:9847`);
  }
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? undefined : m[2]);
  return { host, port };
}

function parseContainerMap(raw: string | undefined): { name: string | undefined; map: Map<string, string> } {
  const map = new Map<string, string>();
  if (raw === undefined || raw.trim() === '') return { name: undefined, map };
  if (!raw.includes('=')) return { name: raw.trim(), map };
  for (const part of raw.split(',')) {
    const [name, comm] = part.split('=').map((s) => s.trim());
    if (!name || !comm) throw new ConfigError(`invalid --container ${JSON.stringify(raw)}: expected NAME or NAME=COMM,NAME=COMM`);
    map.set(comm, name);
  }
  return { name: undefined, map };
}

export function usage(): string {
  const rows = FLAGS.map((f) => {
    const left = `  --${f.name}${f.boolean ? '' : ' VALUE'}`;
    const extra = [f.def !== undefined ? `default ${f.def}` : '', f.env ? `env ${f.env}` : ''].filter(Boolean).join('; ');
    return `${left.padEnd(30)} ${f.help}${extra ? ` (${extra})` : ''}`;
  });
  return [
    'Usage:',
    '  headroom [flags]                         watch the containers of this pod (shareProcessNamespace)',
    '  headroom --pid PID [flags]               watch the memory cgroup of one process',
    '  headroom --cgroup DIR [flags]            watch one cgroup directory',
    '  headroom run --memory 256M [flags] -- COMMAND [ARGS...]',
    '                                           run COMMAND in a new memory cgroup and watch it',
    '',
    'Flags:',
    ...rows,
    '',
    'Exit codes: 0 ok, 1 runtime failure, 2 bad flag or config; run: the command\'s own status (128+signal if killed).',
  ].join('\n');
}

export type ParsedCli = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: Config };

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCli {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const f of FLAGS) options[f.name] = { type: f.boolean ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new ConfigError(((err as Error).message ?? String(err)).replace(/\. To specify.*$/s, ''));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help']) return { kind: 'help' };
  if (values['version']) return { kind: 'version' };

  const get = (name: string): string | undefined => {
    const v = values[name];
    if (typeof v === 'string') return v;
    const spec = FLAGS.find((f) => f.name === name)!;
    const e = spec.env ? env[spec.env] : undefined;
    if (e !== undefined && e !== '') return e;
    return spec.def;
  };

  // Positionals before "--" select a subcommand; those after it are the command to run.
  const dashIdx = parsed.tokens.findIndex((t) => t.kind === 'option-terminator');
  const before: string[] = [];
  const after: string[] = [];
  for (const t of parsed.tokens) {
    if (t.kind !== 'positional') continue;
    (dashIdx >= 0 && t.index > dashIdx ? after : before).push(t.value);
  }
  let mode: Mode = 'pod';
  if (before[0] === 'run') {
    mode = 'run';
    const cmd = [...before.slice(1), ...after];
    if (cmd.length === 0) throw new ConfigError('run needs a command: headroom run --memory 256M -- COMMAND [ARGS...]');
    after.splice(0, after.length, ...cmd);
  } else if (before.length > 0) {
    throw new ConfigError(`unknown command ${JSON.stringify(before[0])}: expected "run" or flags only (see --help)`);
  } else if (after.length > 0) {
    throw new ConfigError('a command after "--" needs the run subcommand: headroom run -- COMMAND');
  }

  const pidRaw = get('pid');
  const cgroup = get('cgroup');
  const pid = pidRaw === undefined ? undefined : parseIntFlag('pid', pidRaw, 1, 2 ** 22);
  if (mode === 'run' && (pid !== undefined || cgroup !== undefined)) throw new ConfigError('run cannot be combined with --pid or --cgroup');
  if (pid !== undefined && cgroup !== undefined) throw new ConfigError('--pid and --cgroup are exclusive: watch one or the other');
  if (mode !== 'run') mode = pid !== undefined ? 'pid' : cgroup !== undefined ? 'cgroup' : 'pod';
  if (mode !== 'run' && typeof values['memory'] === 'string') throw new ConfigError('--memory only applies to run (headroom run --memory 256M -- COMMAND)');

  const logFormat = get('log-format')!;
  if (logFormat !== 'json' && logFormat !== 'text' && logFormat !== 'auto') throw new ConfigError(`invalid --log-format ${JSON.stringify(logFormat)}: expected json, text or auto`);
  const logLevel = get('log-level')!;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`invalid --log-level ${JSON.stringify(logLevel)}: expected debug, info, warn or error`);

  const intervalMs = parseDuration('interval', get('interval')!);
  if (intervalMs < 50) throw new ConfigError(`invalid --interval ${get('interval')}: must be at least 50ms`);
  const peakWindowMs = parseDuration('peak-window', get('peak-window')!);
  if (peakWindowMs < intervalMs) throw new ConfigError('invalid --peak-window: must be at least --interval');
  const warningRatio = parseRatio('warning-ratio', get('warning-ratio')!);
  const criticalRatio = parseRatio('critical-ratio', get('critical-ratio')!);
  if (criticalRatio < warningRatio) throw new ConfigError('invalid --critical-ratio: must not be below --warning-ratio');
  // The trend needs several samples: an explicit --eta-window must cover 4 intervals; the default
  // stretches with a long --interval instead of rejecting a flag the user never set.
  const etaExplicit = typeof values['eta-window'] === 'string' || (env['HEADROOM_ETA_WINDOW'] ?? '') !== '';
  let etaWindowMs = parseDuration('eta-window', get('eta-window')!);
  if (etaWindowMs < intervalMs * 4) {
    if (etaExplicit) throw new ConfigError('invalid --eta-window: must be at least 4 times --interval');
    etaWindowMs = intervalMs * 4;
  }
  const etaWarningMs = parseDuration('eta-warning', get('eta-warning')!);
  const etaCriticalMs = parseDuration('eta-critical', get('eta-critical')!);
  if (etaCriticalMs > etaWarningMs) throw new ConfigError('invalid --eta-critical: must not be above --eta-warning');

  const { name, map } = parseContainerMap(get('container'));
  const memRaw = get('memory');
  const reqRaw = get('memory-request');
  const limRaw = get('memory-limit');
  const procRoot = resolve(get('path.proc')!);
  const cgroupRoot = resolve(get('path.cgroup')!);

  return {
    kind: 'run',
    config: {
      mode,
      listen: parseListen(get('listen')!),
      intervalMs,
      peakWindowMs,
      processIntervalMs: parseDuration('process-interval', get('process-interval')!),
      topProcesses: parseIntFlag('top-processes', get('top-processes')!, 0, 100),
      discoveryIntervalMs: parseDuration('discovery-interval', get('discovery-interval')!),
      procRoot,
      cgroupRoot,
      pid,
      cgroup,
      container: name ?? (mode === 'run' ? 'run' : undefined),
      containerMap: map,
      // The downward API writes 0 when the app sets no request.
      memoryRequest: reqRaw === undefined || reqRaw.trim() === '0' ? undefined : parseSize('memory-request', reqRaw),
      memoryLimitDeclared: limRaw === undefined || limRaw.trim() === '0' ? undefined : parseSize('memory-limit', limRaw),
      pod: { name: env['POD_NAME'] || undefined, namespace: env['POD_NAMESPACE'] || undefined },
      risk: {
        warningRatio,
        criticalRatio,
        clearSamples: parseIntFlag('risk-clear-samples', get('risk-clear-samples')!, 1, 10_000),
        etaWindowMs,
        etaWarningS: etaWarningMs / 1000,
        etaCriticalS: etaCriticalMs / 1000,
        psiFullWarning: parseRatio('psi-full-warning', get('psi-full-warning')!),
        pressureMinRatio: parseRatio('pressure-min-ratio', get('pressure-min-ratio')!, true),
      },
      logFormat,
      logLevel: logLevel as Config['logLevel'],
      memoryLimit: memRaw === undefined ? undefined : parseSize('memory', memRaw),
      lingerMs: parseDuration('linger', get('linger')!),
      sinks: {
        alertmanagerUrl: parseUrl('alertmanager-url', get('alertmanager-url')),
        webhookUrl: parseUrl('webhook-url', get('webhook-url')),
        kubernetesEvents: values['kubernetes-events'] === true || parseBoolEnv('HEADROOM_KUBERNETES_EVENTS', env['HEADROOM_KUBERNETES_EVENTS']),
      },
      capture: parseCapture(get),
      command: mode === 'run' ? after : [],
    },
  };
}
