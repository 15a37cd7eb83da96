// JSON-lines logger (one event per line: time, level, msg, then fields; numbers as numbers), the
// format Kubernetes log pipelines expect; --log-format text for people at a terminal.
// rateLimited() keeps a flapping failure to one line per key and interval, with a count of the rest.
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export type Fields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  log(level: Level, msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** At most one line per key per intervalMs; the next line says how many were suppressed. */
  rateLimited(key: string, intervalMs: number, level: Level, msg: string, fields?: Fields): void;
}

export interface LoggerOptions {
  readonly format: 'json' | 'text';
  readonly level: Level;
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = opts.now ?? Date.now;
  const limits = new Map<string, { last: number; suppressed: number }>();

  const log = (level: Level, msg: string, fields: Fields = {}) => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const time = new Date(now()).toISOString();
    if (opts.format === 'json') {
      const clean: Fields = {};
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) clean[k] = v;
      write(JSON.stringify({ time, level, msg, ...clean }));
    } else {
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`)
        .join(' ');
      write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? '  ' + extra : ''}`);
    }
  };

  return {
    log,
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    rateLimited(key, intervalMs, level, msg, fields = {}) {
      const t = now();
      const s = limits.get(key);
      if (s && t - s.last < intervalMs) {
        s.suppressed++;
        return;
      }
      const suppressed = s?.suppressed ?? 0;
      limits.set(key, { last: t, suppressed: 0 });
      if (limits.size > 1000) limits.delete(limits.keys().next().value as string);
      log(level, msg, suppressed > 0 ? { ...fields, suppressed } : fields);
    },
  };
}

const MiB = 1024 * 1024;
/** Human sizes for log lines: "231 MiB", "1.5 GiB", "812 KiB". */
export function humanBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${Math.round(n / MiB)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}
