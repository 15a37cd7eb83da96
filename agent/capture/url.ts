// Download one capture (e.g. a pprof heap profile) into the capture directory: streamed to a hidden
// file, aborted beyond maxBytes or the time-out, renamed into place only when complete.
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class CaptureError extends Error {
  override name = 'CaptureError';
}

/** The URL for log lines: no credentials, no query string (either may hold a token). */
export function safeUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** "app-20261204T183012Z-heap.pb.gz": container, UTC time, last path segment, an extension from the type. */
export function captureName(container: string, url: string, contentType: string | null, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let last = 'capture';
  try { last = basename(new URL(url).pathname) || 'capture'; } catch { /* keep */ }
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64);
  const type = (contentType ?? '').toLowerCase();
  const ext = /\.[A-Za-z0-9]{1,12}$/.test(last) ? ''
    : type.includes('json') ? '.json'
      : type.startsWith('text/') ? '.txt'
        : type.includes('gzip') ? '.gz'
          : '.bin';
  return `${safe(container)}-${stamp}-${safe(last)}${ext}`;
}

export interface Downloaded {
  readonly path: string;
  readonly bytes: number;
}

export async function download(
  url: string, dir: string, container: string, maxBytes: number, timeoutMs: number, now = new Date(),
): Promise<Downloaded> {
  await mkdir(dir, { recursive: true });
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    throw new CaptureError(e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000}s` : (e.cause?.code ?? e.cause?.message ?? e.message));
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new CaptureError(`HTTP ${res.status} ${res.statusText}`.trim());
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body.cancel().catch(() => undefined);
    throw new CaptureError(`the response is ${declared} bytes, more than --capture-max-bytes ${maxBytes}`);
  }
  const final = join(dir, captureName(container, url, res.headers.get('content-type'), now));
  const partial = join(dir, `.partial-${process.pid}-${basename(final)}`);
  let bytes = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > maxBytes) cb(new CaptureError(`the response grew past --capture-max-bytes ${maxBytes}; discarded`));
      else cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), cap, createWriteStream(partial, { mode: 0o600 }));
    await rename(partial, final);
  } catch (err) {
    await unlink(partial).catch(() => undefined);
    if (err instanceof CaptureError) throw err;
    const e = err as Error;
    throw new CaptureError(e.name === 'TimeoutError' || e.name === 'AbortError' ? `not complete within ${timeoutMs / 1000}s` : e.message);
  }
  return { path: final, bytes };
}
