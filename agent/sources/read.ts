// Thin file readers shared by every source. They never throw for the ordinary
// failures of reading kernel files (missing, vanished, permission denied); they
// return a ReadError that names the file and the cause, so callers can count it
// and leave the affected series absent instead of reporting a made-up number.
import { readFile, readdir } from 'node:fs/promises';

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

export async function readText(source: string, path: string): Promise<ReadResult<string>> {
  try {
    return { ok: true, value: await readFile(path, 'utf8') };
  } catch (err) {
    return { ok: false, error: toReadError(source, path, err) };
  }
}

/** Read and parse; a parse failure becomes a ReadError with code PARSE. */
export async function readParsed<T>(
  source: string,
  path: string,
  parse: (text: string, path: string) => T,
): Promise<ReadResult<T>> {
  const r = await readText(source, path);
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
