// Thin file readers shared by every source. They never throw for the ordinary
// failures of reading kernel files (missing, vanished, permission denied); they
// return a ReadError that names the file and the cause, so callers can count it
// and leave the affected series absent instead of reporting a made-up number.
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export interface ReadError {
  /** Bounded label value for headroom_read_errors_total{source}. */
  readonly source: string;
  readonly path: string;
  /** errno code (ENOENT, EACCES, ESRCH, ...) or PARSE for malformed content. */
  readonly code: string;
  readonly message: string;
}

export type ReadResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ReadError };

export class ParseError extends Error {
  constructor(readonly path: string, readonly line: number | undefined, reason: string) {
    super(`cannot parse ${path}${line === undefined ? '' : ` line ${line}`}: ${reason}`);
    this.name = 'ParseError';
  }
}

/** Codes that mean "this file or process is not there (any more)". */
export function isGone(code: string): boolean {
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENODEV' || code === 'ENOTDIR';
}

export function toReadError(source: string, path: string, err: unknown): ReadError {
  if (err instanceof ParseError) {
    return { source, path, code: 'PARSE', message: err.message };
  }
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : 'EUNKNOWN';
  const why =
    code === 'ENOENT' ? 'no such file' :
    code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
    code === 'ESRCH' ? 'process exited' :
    (e?.message ?? String(err));
  return { source, path, code, message: `cannot read ${path}: ${why}` };
}

/**
 * Kernel-generated files (cgroup files, /proc/PID/{stat,status,cgroup}) are small and produced in
 * microseconds, so they are read synchronously into one reused buffer: one open/read/close, no
 * thread-pool round trips and no 64 KiB buffer per file (fs.promises.readFile allocates one for
 * files that report size 0, which all of these do). Measured in scripts/bench.mjs: less CPU per
 * tick, and no memory spike when 1000 processes are read. Callers that read many files batch them
 * (mapInBatches) so the event loop is never held for long.
 * Use readTextAsync for files whose generation costs real time (smaps_rollup walks page tables).
 */
let shared = Buffer.allocUnsafe(16 * 1024);

function readSmallSync(path: string): string {
  const fd = openSync(path, 'r');
  try {
    let len = 0;
    for (;;) {
      if (len === shared.length) {
        const bigger = Buffer.allocUnsafe(shared.length * 2);
        shared.copy(bigger, 0, 0, len);
        shared = bigger;
      }
      const n = readSync(fd, shared, len, shared.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return shared.toString('utf8', 0, len);
  } finally {
    closeSync(fd);
  }
}

export async function readText(source: string, path: string): Promise<ReadResult<string>> {
  try {
    return { ok: true, value: readSmallSync(path) };
  } catch (err) {
    return { ok: false, error: toReadError(source, path, err) };
  }
}

export async function readTextAsync(source: string, path: string): Promise<ReadResult<string>> {
  try {
    return { ok: true, value: await readFile(path, 'utf8') };
  } catch (err) {
    return { ok: false, error: toReadError(source, path, err) };
  }
}

/** fn over items, `size` at a time, yielding to the event loop between batches. */
export async function mapInBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
    if (i + size < items.length) await yieldToLoop();
  }
  return out;
}

/** Read and parse; a parse failure becomes a ReadError with code PARSE. */
export async function readParsed<T>(
  source: string,
  path: string,
  parse: (text: string, path: string) => T,
  read: (source: string, path: string) => Promise<ReadResult<string>> = readText,
): Promise<ReadResult<T>> {
  const r = await read(source, path);
  if (!r.ok) return r;
  try {
    return { ok: true, value: parse(r.value, path) };
  } catch (err) {
    return { ok: false, error: toReadError(source, path, err) };
  }
}

export async function listDir(source: string, path: string): Promise<ReadResult<string[]>> {
  try {
    return { ok: true, value: await readdir(path) };
  } catch (err) {
    return { ok: false, error: toReadError(source, path, err) };
  }
}

/** An optional file (absent on older kernels, or with an accounting option off): ENOENT is "absent", not an error. */
export function optional<T>(r: ReadResult<T>, errors: ReadError[]): T | undefined {
  if (r.ok) return r.value;
  if (r.error.code !== 'ENOENT') errors.push(r.error);
  return undefined;
}

/**
 * For the files every derived number needs: when one failed, a vanished directory (container exited,
 * cgroup removed) is "gone", anything else is an error to report.
 */
export function failedRequired(results: ReadonlyArray<ReadResult<unknown>>): { gone: boolean; errors: ReadError[] } {
  const failed = results.flatMap((r) => (r.ok ? [] : [r.error]));
  const gone = failed.some((e) => isGone(e.code));
  return { gone, errors: gone ? [] : failed };
}
